"""Task Overview: timeline, log, outputs, Stop, Re-run, and unknown ids."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import User
from orca_flows.domain.states import RunState
from orca_flows.db.repositories.runs import compare_and_set_state
from orca_flows.errors import InvalidInputError
from orca_flows.services.links import get_link, link_access
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.services.run_outputs import read_output
from orca_flows.services.runs import get_run, submit_run
from orca_flows.local.sandbox import SandboxState
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
    settings = get_settings()
    with prefect_api(settings):
        return submit_run(settings, ann.id, "nightly", requested_by=f"user:{ann.id}").run_id


def finish(user: User, run_id: str, outputs: dict[str, bytes]) -> None:
    """What a worker leaves behind: log and outputs in S3, the run succeeded."""
    settings = get_settings()
    with prefect_api(settings), session_scope(settings.effective_database_url) as session:
        run = get_run(session, session.merge(user), run_id)
        s3 = link_access(get_link(session, session.merge(user), "sandbox")).client("s3")
        bucket = run.pipeline.link.bucket
        s3.put_object(Bucket=bucket, Key=f"{run.s3_prefix}log", Body=LOG)
        for name, body in outputs.items():
            s3.put_object(Bucket=bucket, Key=f"{run.s3_prefix}outputs/{name}", Body=body)
        started = utcnow() - timedelta(seconds=75)
        compare_and_set_state(
            session, run_id, RunState.QUEUED, RunState.SUCCEEDED, started_at=started,
            finished_at=started + timedelta(seconds=65), exit_code=0, attempt=1,
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
    settings = get_settings()
    with prefect_api(settings), session_scope(settings.effective_database_url) as session:
        run = get_run(session, session.merge(ann), queued)
        prefix = f"s3://{run.pipeline.link.bucket}/{run.s3_prefix}"

        assert read_output(run, f"{prefix}outputs/report.csv") == b"a,b\n1,2\n"
        for outside in (f"{prefix}log", f"{prefix}outputs/../log", "s3://other/outputs/x"):
            with pytest.raises(InvalidInputError, match="is not an output of run"):
                read_output(run, outside)


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

    assert [e.value for e in app.error] == ["run 'no-such-run' does not exist. See `orca run list`."]
    assert not app.get("download_button") and "Stop" not in [b.label for b in app.button]
