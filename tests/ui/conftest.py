"""AppTest helpers: the router as a given user, a page opened, a second user, test data."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import ScriptVersion, User
from orca_flows.db.repositories import links as links_repo
from orca_flows.db.repositories import pipelines as pipelines_repo
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.actor import Actor
from orca_flows.domain.s3_layout import run_prefix, script_key
from orca_flows.domain.states import FINISHED_RUN_STATES, RunState
from orca_flows.services.link_creation import create_local_link
from orca_flows.services.pipelines import ScriptFile, add_pipeline
from orca_flows.services.users import add_user
from orca_flows.settings import get_settings
from tests.conftest import PASSWORD
from ui.session import USER_KEY, SignedIn

ROUTER = Path(__file__).resolve().parents[2] / "ui" / "streamlit_app.py"
WORK_PAGES = ("task_summary", "task_overview", "script_upload", "task_scheduling", "cloud_setup")
_TEXT_ELEMENTS = (
    "title",
    "header",
    "subheader",
    "markdown",
    "caption",
    "text",
    "code",
    "success",
    "info",
    "warning",
    "error",
    "exception",
)


def app_as(user: User | None) -> AppTest:
    """The router, signed in as ``user`` (or signed out), not yet run."""
    app = AppTest.from_file(str(ROUTER), default_timeout=90)
    if user is not None:
        app.session_state[USER_KEY] = SignedIn(user.id, user.email)
    return app


def open_page(user: User | None, page: str, **query: str) -> AppTest:
    """``page`` (e.g. ``task_summary``) rendered for ``user`` through the router."""
    app = app_as(user).run()
    app.switch_page(f"app_pages/{page}.py")
    app.query_params.update(query)
    return app.run()


def texts(app: AppTest) -> str:
    """Everything the page wrote, as one string (for "the user sees X")."""
    return "\n".join(
        str(element.value) for kind in _TEXT_ELEMENTS for element in getattr(app, kind)
    )


def field_errors(app: AppTest, form: str, field: str) -> list[str]:
    """The error messages shown under ``field`` of ``form`` (see ``ui.forms.FieldErrors``)."""
    return [error.value for error in app.container(f"{form}-{field}").error]


def button(app: AppTest, label: str):  # noqa: ANN201 - streamlit's Button element
    """The button (or form submit button) labelled ``label``."""
    matches = [b for b in [*app.button, *app.form_submit_button] if b.label == label]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in app.button]}"
    return matches[0]


def widget(app: AppTest, kind: str, label: str):  # noqa: ANN201 - a streamlit widget element
    """The ``kind`` widget (``text_input``, ``selectbox``...) labelled ``label``."""
    matches = [w for w in getattr(app, kind) if w.label == label]
    assert matches, f"no {kind} {label!r}; have: {[w.label for w in getattr(app, kind)]}"
    return matches[0]


@pytest.fixture
def bob(orca_home: Path) -> User:
    """A second user of the same database."""
    actor = add_user(get_settings(), "bob@example.com", PASSWORD)
    with session_scope(get_settings().effective_database_url) as session:
        return session.get_one(User, actor.user_id)


def link_the_sandbox(user: User, name: str = "sandbox") -> None:
    """Give ``user`` a link to the running sandbox (as Cloud Setup's one click does)."""
    create_local_link(get_settings(), Actor(user.id, user.email), name)


def add_script(
    user: User, pipeline: str, script: bytes, filename: str = "job.sh", link: str = "sandbox"
) -> None:
    """Give ``user`` a pipeline on ``link`` with ``script`` as version 1."""
    add_pipeline(
        get_settings(),
        Actor(user.id, user.email),
        pipeline,
        ScriptFile(filename, script),
        link_name=link,
    )


def offline_pipeline(user: User, pipeline: str, link: str = "offline") -> None:
    """A link row and a pipeline with one script version, created without AWS or Prefect.

    Enough for every page that only reads the database, and for refusals that come
    before a service reaches the account.
    """
    with session_scope(get_settings().effective_database_url) as session:
        found = links_repo.get_link_by_name(session, user.id, link)
        if found is None:
            found = links_repo.create_link(
                session,
                owner_id=user.id,
                name=link,
                region="us-east-1",
                block_document_name=f"orca-link-offline-{user.id}",
            )
            found.local = True  # runner "local" by default, as on the sandbox
        row = pipelines_repo.create_pipeline(
            session,
            owner_id=user.id,
            name=pipeline,
            link_id=found.id,
            runner="local",
            ordering_key="pipeline",
            timeout_seconds=60,
            retries=0,
            environment={},
        )
        pipelines_repo.add_script_version(
            session,
            row,
            s3_key=script_key(user.id, pipeline, 1, "job.sh"),
            sha256="0" * 64,
            size_bytes=1,
            uploaded_by=user.id,
        )


def offline_runs(
    user: User,
    pipeline: str,
    states: list[str],
    *,
    start: datetime | None = None,
    every: timedelta = timedelta(minutes=1),
    seconds: float = 30.0,
) -> list[str]:
    """Runs of ``pipeline`` in ``states``, requested ``every`` apart from ``start``; finished
    ones ran ``seconds``. Returns their ids, oldest first."""
    start = start or utcnow() - every * len(states)
    ids = []
    with session_scope(get_settings().effective_database_url) as session:
        row = pipelines_repo.get_pipeline_by_name(session, user.id, pipeline)
        version = session.scalars(
            select(ScriptVersion).where(ScriptVersion.pipeline_id == row.id)
        ).first()
        for index, state in enumerate(states):
            requested = start + every * index
            run = runs_repo.create_run(
                session,
                owner_id=user.id,
                pipeline_id=row.id,
                script_version_id=version.id,
                ordering_key=f"p-{row.id}",
                requested_by=f"user:{user.id}",
            )
            run.requested_at = requested
            run.s3_prefix = run_prefix(user.id, pipeline, run.id)
            if state != RunState.QUEUED:
                run.started_at = requested + timedelta(seconds=1)
            if state in FINISHED_RUN_STATES:
                run.finished_at = run.started_at + timedelta(seconds=seconds)
                run.exit_code = 0 if state == RunState.SUCCEEDED else 1
            run.state = state
            ids.append(run.id)
    return ids
