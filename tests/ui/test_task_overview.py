"""Task Overview: timeline, log, outputs, Stop, Re-run, and unknown ids."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import Run, User
from orca_flows.db.repositories.runs import compare_and_set_state
from orca_flows.domain.actor import Actor
from orca_flows.domain.s3_layout import attempt_prefix, log_key, output_key
from orca_flows.domain.states import RunState
from orca_flows.errors import InvalidInputError, NotFoundError
from orca_flows.local.sandbox import SandboxState
from orca_flows.services.links import access_link
from orca_flows.services.run_outputs import read_output
from orca_flows.services.runs import submit_run
from orca_flows.settings import get_settings
from tests.ui.conftest import add_script, button, link_the_sandbox, open_page, texts
from ui.display import state_label

pytestmark = pytest.mark.usefixtures("prefect_server")
SCRIPT = b"#!/bin/bash\necho hello\n"
LOG = b"hello from the pipeline\nrows: 42\n"


@pytest.fixture
def queued(sandbox: SandboxState, ann: User) -> str:
    """A queued run of ann's pipeline ``nightly`` on the sandbox (no worker takes it)."""
    link_the_sandbox(ann)
    add_script(ann, "nightly", SCRIPT)
    return submit_run(
        get_settings(), Actor(ann.id, ann.email), "nightly", requested_by=f"user:{ann.id}"
    ).run_id


def finish(user: User, run_id: str, outputs: dict[str, bytes]) -> None:
    """What a worker leaves behind: log and outputs in S3, the run succeeded."""
    settings = get_settings()
    access = access_link(settings, Actor(user.id, user.email), "sandbox")
    with session_scope(settings.effective_database_url) as session:
        # The first attempt's folder: the attempt that counts once the run is over.
        prefix = attempt_prefix(session.get_one(Run, run_id).s3_prefix or "", 1)
    s3 = access.client("s3")
    s3.put_object(Bucket=access.bucket, Key=log_key(prefix), Body=LOG)
    for name, body in outputs.items():
        s3.put_object(Bucket=access.bucket, Key=output_key(prefix, name), Body=body)
    with session_scope(settings.effective_database_url) as session:
        started = utcnow() - timedelta(seconds=75)
        compare_and_set_state(
            session,
            run_id,
            RunState.QUEUED,
            RunState.SUCCEEDED,
            started_at=started,
            finished_at=started + timedelta(seconds=65),
            exit_code=0,
            attempt=1,
        )


def test_a_finished_run_shows_timeline_log_and_outputs(ann: User, queued: str) -> None:
    finish(ann, queued, {"report.csv": b"a,b\n1,2\n"})

    app = open_page(ann, "task_overview", run=queued)

    shown = texts(app)
    assert app.subheader[0].value == f"{state_label('succeeded')} · nightly"
    assert "**requested**" in shown and "**started**" in shown
    assert "**succeeded**" in shown and "after 1 min 05 s" in shown
    assert "Script version **1** · sha256 `" in shown
    assert LOG.decode().strip() in [code.value for code in app.code]
    labels = [b.label for b in app.get("download_button")]
    assert labels == ["Download the full log", "Download report.csv"]
    assert "Stop" not in [b.label for b in app.button]
    assert "Live:" not in shown


def test_an_output_is_read_back_only_from_the_run_s_outputs(ann: User, queued: str) -> None:
    finish(ann, queued, {"report.csv": b"a,b\n1,2\n"})
    settings, actor = get_settings(), Actor(ann.id, ann.email)
    with session_scope(settings.effective_database_url) as session:
        run = session.get_one(Run, queued)
        prefix = f"s3://{run.pipeline.link.bucket}/{run.s3_prefix}attempts/1/"

    assert read_output(settings, actor, queued, f"{prefix}outputs/report.csv") == b"a,b\n1,2\n"
    for outside in (f"{prefix}log", f"{prefix}outputs/../log", "s3://other/outputs/x"):
        with pytest.raises(InvalidInputError, match="is not an output of run"):
            read_output(settings, actor, queued, outside)
    with pytest.raises(NotFoundError, match="deleted from the bucket"):
        read_output(settings, actor, queued, f"{prefix}outputs/gone.csv")


def test_stop_cancels_a_queued_run(ann: User, queued: str) -> None:
    app = open_page(ann, "task_overview", run=queued)
    assert "Live: refreshing every 2 s" in texts(app)

    button(app, "Stop").click()
    app.run()

    assert app.success[0].value == f"Run {queued} was queued; it is now cancelled."
    assert app.subheader[0].value == f"{state_label('cancelled')} · nightly"
    assert "Stop" not in [b.label for b in app.button]


def test_re_run_queues_a_new_run_and_opens_it(ann: User, queued: str) -> None:
    app = open_page(ann, "task_overview", run=queued)

    button(app, "Re-run nightly").click()
    app.run()

    new_id = app.query_params["run"]
    assert new_id != queued
    assert app.success[0].value == f"Run {new_id} of 'nightly' queued."
    assert f"Run {new_id} · #2 of ordering key" in texts(app)


def test_an_unknown_run_id_says_it_does_not_exist(ann: User) -> None:
    app = open_page(ann, "task_overview", run="no-such-run")

    assert [e.value for e in app.error] == [
        "run 'no-such-run' does not exist. See `orca run list`."
    ]
    assert not app.get("download_button") and "Stop" not in [b.label for b in app.button]
