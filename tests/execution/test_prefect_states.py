"""An execution's Prefect flow runs tell the Orca run's story, and Prefect's cancel stops it.

Read back from the real Prefect server with the public client: the states a Prefect user
sees in the UI (Completed, Failed, Failed named TimedOut, Cancelled, Crashed).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType
from prefect.states import State

from orca_flows.db.engine import session_scope
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.prefect_adapter import link_access
from orca_flows.worker.execution import execute_run
from tests.execution.conftest import Ledger, Orca, Workers, gone, run_events, wait_until

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]

PREFECT = str(Path(sys.executable).with_name("prefect"))
# Short lease and visibility: a dead worker's run is taken over within seconds.
TIMINGS = {"ORCA_WORKER_LEASE_SECONDS": "3", "ORCA_WORKER_VISIBILITY_SECONDS": "3"}


def _flow_run_ids(orca: Orca, run_id: str) -> list[str]:
    with session_scope(orca.settings.effective_database_url) as session:
        return runs_repo.flow_run_ids(session, run_id)


def _state(flow_run_id: str) -> State:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
    assert state is not None, flow_run_id
    return state


def _artifacts(flow_run_id: str) -> dict[str, str]:
    """The artifacts of a flow run, by key: their data as text."""
    only = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=only)
    return {artifact.key or "": str(artifact.data) for artifact in found}


def _final_flow_run(orca: Orca, run_id: str) -> State:
    """The state of the run's latest flow run once it is final in Prefect."""

    def final() -> State | None:
        ids = _flow_run_ids(orca, run_id)
        state = _state(ids[-1]) if ids else None
        return state if state is not None and state.is_final() else None

    return wait_until(final, 30, f"run {run_id}'s flow run final")


def _reenter(run_id: str) -> State:
    """The `orca-run` flow started outside any worker (as a retry from the UI is)."""
    return asyncio.run(execute_run(run_id=run_id, return_state=True))  # type: ignore[arg-type]


def test_a_takeover_crashes_the_dead_workers_flow_run_and_completes_its_own(
    orca: Orca, ledger: Ledger, workers: Workers
) -> None:
    [doomed] = workers.start(1, concurrency=1, **TIMINGS)
    orca.add_pipeline("steady", ledger.script("steady", "sleep 4"))
    [run_id] = [orca.submit("steady")]
    wait_until(lambda: ledger.starts(run_id), 60, "the script started")
    [first] = _flow_run_ids(orca, run_id)
    assert _state(first).type == StateType.RUNNING

    doomed.kill()  # its flow run is left Running: nothing of its engine is left to end it
    doomed.wait()
    workers.start(1, concurrency=1, **TIMINGS)

    assert orca.wait_finished([run_id], timeout=60) == {run_id: "succeeded"}
    assert _final_flow_run(orca, run_id).type == StateType.COMPLETED
    ids = _flow_run_ids(orca, run_id)
    assert len(ids) == 2 and ids[0] == first, ids
    crashed = _state(first)
    assert crashed.type == StateType.CRASHED, crashed
    assert run_id in (crashed.message or "")
    assert len(ledger.starts(run_id)) == 1, "the script ran twice"

    # Re-entered from outside a worker: the finished run's state, and nothing runs again.
    again = _reenter(run_id)
    assert again.type == StateType.COMPLETED, again
    assert len(ledger.starts(run_id)) == 1


def test_failed_and_timed_out_runs_end_their_flow_runs_failed(
    orca: Orca, ledger: Ledger, workers: Workers
) -> None:
    workers.start(1)
    orca.add_pipeline("broken", ledger.script("broken", "exit 3"), ordering_key="a")
    orca.add_pipeline(
        "slow", ledger.script("slow", "sleep 30"), ordering_key="b", timeout_seconds=1
    )
    broken, slow = orca.submit("broken"), orca.submit("slow")

    assert orca.wait_finished([broken, slow], timeout=60) == {
        broken: "failed",
        slow: "timed_out",
    }
    failed = _final_flow_run(orca, broken)
    assert (failed.type, failed.name) == (StateType.FAILED, "Failed"), failed
    assert broken in (failed.message or "") and "exit code 3" in (failed.message or "")
    timed_out = _final_flow_run(orca, slow)
    assert (timed_out.type, timed_out.name) == (StateType.FAILED, "TimedOut"), timed_out
    # The worker's own flow run carries the run's artifacts: its result and its log.
    artifacts = wait_until(lambda: _artifacts(_flow_run_ids(orca, broken)[-1]), 20, "the artifacts")
    summary = artifacts[f"orca-run-{broken[:8]}"]
    assert "3" in summary and orca.show(broken)["script_sha256"] in summary, summary
    assert "attempts/1/" in artifacts[f"orca-run-{broken[:8]}-log"]

    starts = len(ledger.stamps())
    again = _reenter(broken)
    assert again.type == StateType.FAILED, again
    assert len(ledger.stamps()) == starts, "re-entering a finished run ran its script"


def _forever(orca: Orca, ledger: Ledger, pid_file: Path) -> tuple[str, int]:
    body = f'echo "$$" >{pid_file}.tmp && mv {pid_file}.tmp {pid_file}\nsleep 300'
    orca.add_pipeline("forever", ledger.script("forever", body))
    run_id = orca.submit("forever")
    wait_until(pid_file.exists, 60, "the script started")
    return run_id, int(pid_file.read_text())


def test_orca_run_stop_ends_the_flow_run_cancelled(
    orca: Orca, ledger: Ledger, workers: Workers, pid_file: Path, prefect_server: Any
) -> None:
    workers.start(1)
    run_id, pid = _forever(orca, ledger, pid_file)

    orca.cli("run", "stop", run_id)

    wait_until(lambda: orca.show(run_id)["state"] == "cancelled", 30, "the stop confirmed")
    assert gone(pid)
    state = _final_flow_run(orca, run_id)
    assert state.type == StateType.CANCELLED, state
    # What an automation sees: the worker's running and cancelled events, in order, each
    # naming the execution's flow run.
    wanted = ["orca.run.queued", "orca.run.running", "orca.run.cancelled"]

    def events() -> list[dict[str, Any]] | None:
        found = sorted(run_events(prefect_server.api_url, run_id), key=lambda e: e["occurred"])
        return found if [event["event"] for event in found] == wanted else None

    flow_run_id = _flow_run_ids(orca, run_id)[-1]
    for event in wait_until(events, 30, f"the events {wanted}")[1:]:
        related = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in event["related"]}
        assert related["flow-run"] == f"prefect.flow-run.{flow_run_id}", event


def test_orca_run_stop_after_its_worker_died_ends_the_flow_run_cancelled(
    orca: Orca, ledger: Ledger, workers: Workers, pid_file: Path
) -> None:
    [doomed] = workers.start(1, **TIMINGS)
    run_id, pid = _forever(orca, ledger, pid_file)
    [flow_run_id] = _flow_run_ids(orca, run_id)
    doomed.kill()  # its flow run is left Running, and no worker is left to take over
    doomed.wait()
    time.sleep(float(TIMINGS["ORCA_WORKER_LEASE_SECONDS"]) + 1)  # the dead worker's lease lapses

    orca.cli("run", "stop", run_id)  # the stop kills the script itself

    assert orca.show(run_id)["state"] == "cancelled"
    assert gone(pid)
    state = _state(flow_run_id)
    assert state.type == StateType.CANCELLED, state
    assert run_id in (state.message or "")


def test_prefect_flow_run_cancel_stops_the_orca_run(
    orca: Orca, ledger: Ledger, workers: Workers, pid_file: Path
) -> None:
    workers.start(1)
    run_id, pid = _forever(orca, ledger, pid_file)
    [flow_run_id] = _flow_run_ids(orca, run_id)

    cancel = subprocess.run(
        [PREFECT, "flow-run", "cancel", flow_run_id],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr

    wait_until(lambda: gone(pid), 20, "the script killed")
    wait_until(lambda: orca.show(run_id)["state"] == "cancelled", 30, "the run cancelled")
    state = _final_flow_run(orca, run_id)
    assert state.type == StateType.CANCELLED, state
    assert ledger.ends(run_id) == [], "the cancelled script ran to its end"


def test_the_flow_started_from_prefect_executes_a_queued_run_with_no_worker(
    orca: Orca, ledger: Ledger
) -> None:
    # No worker at all: the flow run claims the run itself (as a run started from the
    # Prefect UI or CLI does), runs it once, and the run's message is left for a worker.
    orca.add_pipeline("lonely", ledger.script("lonely"))
    run_id = orca.submit("lonely")
    # A fresh process has read no block yet (the submit above warmed this one's cache):
    # the flow loads the link's blocks from its own threads.
    link_access._CACHE.clear()

    state = _reenter(run_id)

    assert state.type == StateType.COMPLETED, state
    assert orca.show(run_id)["state"] == "succeeded"
    assert len(ledger.starts(run_id)) == 1
    flow_run_id = _flow_run_ids(orca, run_id)[-1]
    assert set(_artifacts(flow_run_id)) == {f"orca-run-{run_id[:8]}", f"orca-run-{run_id[:8]}-log"}
