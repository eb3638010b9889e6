"""The web app's own services on SQLite and MariaDB: sign-in lockout and Task Summary queries."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from orca_flows.db.engine import session_scope
from orca_flows.db.models import User
from orca_flows.domain.actor import Actor
from orca_flows.errors import InvalidInputError, NotFoundError
from orca_flows.services import auth
from orca_flows.services.summary import (
    RunFilter,
    count_by_state,
    duration_points,
    list_run_page,
    summarize_runs,
)
from orca_flows.services.users import add_user
from orca_flows.settings import OrcaSettings
from tests.conftest import PASSWORD
from tests.ui.conftest import offline_pipeline, offline_runs

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(db_url: str, monkeypatch: pytest.MonkeyPatch) -> OrcaSettings:
    """Settings on the database under test (the helpers read ORCA_DATABASE_URL too)."""
    monkeypatch.setenv("ORCA_DATABASE_URL", db_url)
    return OrcaSettings(database_url=db_url)


def _user(settings: OrcaSettings, email: str) -> User:
    actor = add_user(settings, email, PASSWORD)
    with session_scope(settings.effective_database_url) as session:
        return session.get_one(User, actor.user_id)


def _refused(settings: OrcaSettings, email: str, password: str) -> bool:
    try:
        auth.authenticate(settings, email, password)
    except auth.LoginError:
        return True
    return False


def test_lockout_counts_concurrent_failures_and_expires(
    settings: OrcaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [T0]
    monkeypatch.setattr(auth, "utcnow", lambda: now[0])
    user = _user(settings, "ann@example.com")
    attempts = [
        threading.Thread(target=_refused, args=(settings, user.email, "wrong password!"))
        for _ in range(5)  # the contract: five failures lock the account
    ]
    for thread in attempts:
        thread.start()
    for thread in attempts:
        thread.join()

    assert _refused(settings, user.email, PASSWORD)  # all five counted: locked
    now[0] = T0 + timedelta(minutes=15) - timedelta(seconds=1)
    assert _refused(settings, user.email, PASSWORD)
    now[0] = T0 + timedelta(minutes=15)
    assert auth.authenticate(settings, user.email, PASSWORD).user_id == user.id


def test_register_refuses_a_different_confirmation_and_stores_nothing(
    settings: OrcaSettings,
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        auth.register(settings, "ann@example.com", PASSWORD, PASSWORD + "x")

    assert caught.value.field == "confirmation"
    assert _refused(settings, "ann@example.com", PASSWORD)


def test_summary_queries_page_filter_and_scope_to_the_owner(settings: OrcaSettings) -> None:
    ann, bob = _user(settings, "ann@example.com"), _user(settings, "bob@example.com")
    offline_pipeline(ann, "etl")
    offline_pipeline(bob, "secret")
    ids = offline_runs(ann, "etl", ["succeeded", "failed", "queued"] * 4, start=T0)
    offline_runs(bob, "secret", ["failed"] * 5, start=T0)

    owner = Actor(ann.id, ann.email)
    counts = count_by_state(settings, owner, RunFilter(states=("failed",)))
    page = list_run_page(settings, owner, RunFilter(), page=3, page_size=5)
    past_the_end = list_run_page(settings, owner, RunFilter(), page=9, page_size=5)
    failed = list_run_page(
        settings,
        owner,
        RunFilter(pipeline="etl", states=("failed",), since=T0 + timedelta(minutes=4)),
    )
    points = duration_points(settings, owner, RunFilter())
    summary = summarize_runs(settings, owner, RunFilter(states=("failed",)), page=3, page_size=5)
    with pytest.raises(NotFoundError, match="pipeline 'secret' does not exist"):
        list_run_page(settings, owner, RunFilter(pipeline="secret"))
    with pytest.raises(InvalidInputError, match="state 'done' must be one of"):
        list_run_page(settings, owner, RunFilter(states=("done",)))

    assert counts == {
        "queued": 4,
        "running": 0,
        "cancelling": 0,
        "succeeded": 4,
        "failed": 4,
        "timed_out": 0,
        "cancelled": 0,
    }
    assert (page.total, page.pages, [r.id for r in page.rows]) == (12, 3, ids[::-1][10:])
    assert past_the_end.page == 3 and past_the_end.rows == page.rows
    assert [r.id for r in failed.rows] == [ids[10], ids[7], ids[4]]
    assert sorted(p.seconds for p in points) == [30.0] * 8
    assert page.rows[0].requested_at.tzinfo is not None
    # The page's one-unit read gives the same answers as the three queries.
    assert summary.counts == counts
    assert summary.points == duration_points(settings, owner, RunFilter(states=("failed",)))
    assert summary.page == list_run_page(
        settings, owner, RunFilter(states=("failed",)), page=3, page_size=5
    )
