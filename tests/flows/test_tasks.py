"""A Prefect user's own flows run Orca pipelines with ``orca_flows.tasks``.

Real parts: a Prefect server process, the sandbox's S3 and SQS, one `orca worker`
process (local runner). The flows run in this process, as a user's script would.
"""

from __future__ import annotations

import asyncio
import pickle
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.states import State

from orca_flows.db.engine import session_scope
from orca_flows.db.models import Run
from orca_flows.domain.actor import Actor
from orca_flows.errors import InvalidStateError, RunNotSucceededError
from orca_flows.examples.chain_flow import chain
from orca_flows.services.links import access_link
from orca_flows.services.pipelines import ScriptFile
from orca_flows.tasks import RunResult, run_pipeline, submit_run, wait_for_run
from tests.execution.conftest import LINK, Orca, Workers, wait_until

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]

POLL = 0.3
# Writes the run's GREETING parameter (an environment variable) to an output file.
GREET = ScriptFile(
    "greet.sh",
    b'#!/bin/bash\nset -eu\necho "${GREETING:-none}" > "$ORCA_OUTPUT_DIR/greeting.txt"\n',
)
# The second stage of a chain: records the INPUT_URI it was handed.
TAKE = ScriptFile(
    "take.sh", b'#!/bin/bash\nset -eu\necho "$INPUT_URI" > "$ORCA_OUTPUT_DIR/took.txt"\n'
)
FAIL = ScriptFile("fail.sh", b'#!/bin/bash\necho "upstream extract is missing" >&2\nexit 3\n')


def _read(orca: Orca, uri: str) -> bytes:
    """An object of the link's bucket by its ``s3://`` URI (fails if it does not exist)."""
    access = access_link(orca.settings, Actor(orca.user.id, orca.user.email), LINK)
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body: bytes = access.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _orca_runs_of(orca: Orca, flow_run_id: UUID) -> list[tuple[str, str, int | None]]:
    """(run id, state, exit code) of the Orca runs a flow run requested, oldest first."""
    with session_scope(orca.settings.effective_database_url) as session:
        found = (
            session.query(Run)
            .filter(Run.requested_by == f"flow-run:{flow_run_id}")
            .order_by(Run.requested_at)
        )
        return [(run.id, run.state, run.exit_code) for run in found]


def _flow_run_logs(flow_run_id: UUID) -> str:
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


def test_a_sync_flow_runs_pipelines_gets_their_outputs_and_passes_parameters(
    orca: Orca, workers: Workers
) -> None:
    orca.add_pipeline("greet", GREET)
    orca.add_pipeline("take", TAKE)
    workers.start()

    @flow
    def greeting() -> RunResult:
        return run_pipeline("greet", parameters={"GREETING": "hello from Prefect"}, poll=POLL)

    result = greeting()
    assert result.state == "succeeded" and result.exit_code == 0, result
    assert result.script_sha256 and result.script_version == 1
    assert result.duration_seconds is not None and result.log_uri.startswith("s3://")
    (output,) = result.output_uris
    assert output.endswith("/greeting.txt")
    assert _read(orca, output) == b"hello from Prefect\n"  # the parameter reached the script
    _read(orca, result.log_uri)

    # The shipped example chains two pipelines: the second gets the first one's output.
    (took,) = chain("greet", "take")
    first_output = _read(orca, took).decode().strip()
    assert first_output.endswith("/greeting.txt") and first_output != output
    assert _read(orca, first_output) == b"none\n"


def test_an_async_flow_waits_for_a_submitted_run_and_a_failed_run_fails_the_flow(
    orca: Orca, workers: Workers
) -> None:
    orca.add_pipeline("greet", GREET)
    orca.add_pipeline("broken", FAIL)

    @flow
    async def submit_and_wait_briefly() -> str:
        run_id = submit_run("greet", parameters={"GREETING": "async"})
        with pytest.raises(InvalidStateError, match=f"{run_id} .* still queued after 1 s"):
            wait_for_run(run_id, timeout=1, poll=POLL)  # no worker yet
        return run_id

    run_id = asyncio.run(submit_and_wait_briefly())
    workers.start()

    @flow
    async def wait_again(run_id: str) -> RunResult:
        return wait_for_run(run_id, poll=POLL)

    result = asyncio.run(wait_again(run_id))
    assert result.run_id == run_id
    assert result.state == "succeeded", result
    assert _read(orca, result.output_uris[0]) == b"async\n"

    @flow
    async def user_flow() -> RunResult:
        return run_pipeline.with_options(retries=1)("broken", poll=POLL)

    state: State = asyncio.run(user_flow(return_state=True))  # type: ignore[call-overload]
    assert state.is_failed(), state
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    runs = _orca_runs_of(orca, flow_run_id)
    # The task's retry re-submitted: two distinct Orca runs, both failed with exit code 3.
    assert [(s, code) for _, s, code in runs] == [("failed", 3), ("failed", 3)], runs
    assert runs[0][0] != runs[1][0]
    last = runs[1][0]
    with get_client(sync_client=True) as client:
        seen = client.read_flow_run(flow_run_id).state
    assert seen is not None and seen.is_failed()
    # The Orca error names the run, its state and exit code, in the flow run's message
    # and in its logs (where the Prefect UI shows it).
    assert last in (seen.message or "") and "ended failed (exit code 3)" in (seen.message or "")
    # Prefect ships logs in the background: poll until they are on the server.
    wanted = f"Orca run {last} of pipeline 'broken' ended failed (exit code 3)"

    def logged() -> str | None:
        text = _flow_run_logs(flow_run_id)
        return text if wanted in text else None

    logs = wait_until(logged, 15, "the Orca error in the flow run's logs")
    assert "Log: s3://" in logs


def test_a_run_that_did_not_succeed_is_an_error_a_flow_can_catch_and_pickle() -> None:
    error = RunNotSucceededError("run r1 ended failed", run_id="r1", state="failed")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, RunNotSucceededError) and isinstance(copy, InvalidStateError)
    assert (str(copy), copy.run_id, copy.state) == ("run r1 ended failed", "r1", "failed")
