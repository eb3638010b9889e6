"""Intent, Prefect call, record: a refused command changes nothing, an interrupted one finishes
when run again, and no Prefect call is made inside a database transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from orca_flows.db.base import utcnow
from orca_flows.db.models import Pipeline
from orca_flows.errors import InvalidStateError
from orca_flows.services import schedules
from orca_flows.services.firings import submit_firing
from orca_flows.services.lookup import actor_of
from orca_flows.settings import get_settings
from tests.schedules.conftest import orca, read_deployment, schedule_rows, submit_deployment_ids

pytestmark = pytest.mark.usefixtures("prefect_server")

_DOWN = "http://127.0.0.1:9/api"


class _Crash(BaseException):
    """The process dying right after a step (not an error the command could undo)."""


def _prefect_down_after_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # The reachability check passes, then Prefect goes away: the intent is already written.
    monkeypatch.setattr(schedules, "check_prefect_reachable", lambda action: None)


@contextmanager
def _crash_after(name: str) -> Iterator[None]:
    """Inside the block, the process "dies" right after the Prefect call ``name``."""
    real: Callable[..., Any] = getattr(schedules, name)

    def call_then_crash(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise _Crash

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schedules, name, call_then_crash)
        yield


@pytest.mark.parametrize(
    "existing", [pytest.param(True, id="change"), pytest.param(False, id="create")]
)
def test_prefect_failing_during_set_keeps_the_previous_schedule(
    etl: Pipeline, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    if existing:
        orca("schedule", "set", "etl", "--interval", "3600")
    before = [(r.cron, r.interval_seconds, r.timezone, r.deployment_id) for r in schedule_rows()]
    deployments = submit_deployment_ids()
    _prefect_down_after_the_check(monkeypatch)

    with temporary_settings(updates={PREFECT_API_URL: _DOWN}):
        result = orca("schedule", "set", "etl", "--cron", "0 3 * * *", "--timezone", "Europe/Paris")

    assert (
        result.exit_code == 1 and f"the Prefect API at {_DOWN} cannot be reached" in result.stderr
    )
    assert [
        (r.cron, r.interval_seconds, r.timezone, r.deployment_id) for r in schedule_rows()
    ] == before
    assert submit_deployment_ids() == deployments
    if existing:
        [schedule] = read_deployment(before[0][3]).schedules
        assert schedule.schedule.interval == timedelta(seconds=3600)


def test_prefect_failing_during_pause_keeps_the_schedule_active(
    etl: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    orca("schedule", "set", "etl", "--interval", "3600")
    _prefect_down_after_the_check(monkeypatch)

    with temporary_settings(updates={PREFECT_API_URL: _DOWN}):
        result = orca("schedule", "pause", "etl")

    assert result.exit_code == 1 and "cannot be reached" in result.stderr
    [row] = schedule_rows()
    assert row.active and not read_deployment(row.deployment_id).paused


def test_a_set_interrupted_before_recording_finishes_when_run_again(etl: Pipeline) -> None:
    settings = get_settings()
    deployments = submit_deployment_ids()

    with _crash_after("apply_deployment"), pytest.raises(_Crash):
        schedules.set_schedule(
            settings, actor_of(settings, etl.owner_id), "etl", interval_seconds=3600
        )

    [row] = schedule_rows()
    [written] = submit_deployment_ids() - deployments
    assert row.deployment_id is None  # the intent is there, the id was never recorded
    with pytest.raises(InvalidStateError, match="run `orca schedule set etl"):
        submit_firing(
            settings,
            etl.owner_id,
            "etl",
            schedule_id=row.id,
            deployment_id=str(written),
            scheduled_for=utcnow(),
        )

    again = orca("schedule", "set", "etl", "--interval", "3600")

    assert again.exit_code == 0, again.output
    [row] = schedule_rows()
    assert row.deployment_id == str(written)  # the same deployment, upserted by its name
    assert submit_deployment_ids() == deployments | {written}


def test_a_remove_interrupted_after_deleting_the_deployment_finishes_when_run_again(
    etl: Pipeline,
) -> None:
    orca("schedule", "set", "etl", "--interval", "3600")
    [row] = schedule_rows()
    settings = get_settings()

    with _crash_after("delete_deployment"), pytest.raises(_Crash):
        schedules.remove_schedule(settings, actor_of(settings, etl.owner_id), "etl")

    assert read_deployment(row.deployment_id) is None
    [left] = schedule_rows()
    assert not left.active  # paused first: nothing fires while the removal is unfinished

    again = orca("schedule", "remove", "etl")

    assert again.exit_code == 0, again.output
    assert schedule_rows() == []


def test_a_failed_resume_leaves_the_schedule_paused(
    etl: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    orca("schedule", "set", "etl", "--interval", "3600")
    orca("schedule", "pause", "etl")
    _prefect_down_after_the_check(monkeypatch)

    with temporary_settings(updates={PREFECT_API_URL: _DOWN}):
        result = orca("schedule", "resume", "etl")

    assert result.exit_code == 1 and "cannot be reached" in result.stderr
    [row] = schedule_rows()
    assert not row.active and read_deployment(row.deployment_id).paused


def test_a_pipeline_removal_stopped_after_its_deployment_went_leaves_the_schedule_paused(
    etl: Pipeline,
) -> None:
    from orca_flows.services import pipeline_removal

    orca("schedule", "set", "etl", "--interval", "3600")
    settings = get_settings()
    real = pipeline_removal.delete_deployment

    def delete_then_crash(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise _Crash

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline_removal, "delete_deployment", delete_then_crash)
        with pytest.raises(_Crash):
            pipeline_removal.remove_pipeline(settings, actor_of(settings, etl.owner_id), "etl")

    # The deployment is gone, so the row must not claim the schedule still fires.
    assert [row.active for row in schedule_rows()] == [False]
    listed = orca("schedule", "list", "--json")
    assert '"active": false' in listed.stdout
