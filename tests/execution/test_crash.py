"""A worker that dies (or stalls) mid-run costs a delay, never a lost or repeated run."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from itertools import pairwise

import pytest

from tests.execution.conftest import Ledger, Orca, Workers, wait_until

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]

# Short lease and visibility: a dead worker's run is taken over within seconds.
TIMINGS = {"ORCA_WORKER_LEASE_SECONDS": "3", "ORCA_WORKER_VISIBILITY_SECONDS": "3"}


def _assert_once_and_in_order(ledger: Ledger, run_ids: list[str]) -> None:
    for run_id in run_ids:
        assert (len(ledger.starts(run_id)), len(ledger.ends(run_id))) == (1, 1), run_id
    for earlier, later in pairwise(run_ids):
        assert ledger.ends(earlier)[0] <= ledger.starts(later)[0], f"{later} overlapped {earlier}"


def _freeze(worker: subprocess.Popen[bytes], orca: Orca) -> None:
    """SIGSTOP ``worker`` at a moment it holds no write lock on the SQLite file: frozen
    inside a transaction, it would stall every worker (a limit of local mode, not the case
    under test)."""
    database = orca.settings.effective_database_url.removeprefix("sqlite:///")
    for _ in range(50):
        worker.send_signal(signal.SIGSTOP)
        try:
            with closing(
                sqlite3.connect(database, timeout=0.2, isolation_level=None)
            ) as connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # locked: let it finish its transaction first
            worker.send_signal(signal.SIGCONT)
            time.sleep(0.05)
    raise AssertionError("the worker never let go of the database")


def test_a_worker_killed_mid_run_is_replaced_and_the_run_completes_once(
    orca: Orca, ledger: Ledger, workers: Workers
) -> None:
    [doomed] = workers.start(1, concurrency=1, **TIMINGS)
    orca.add_pipeline("steady", ledger.script("steady", "sleep 4"), ordering_key="crash")
    orca.add_pipeline("quick", ledger.script("quick"), ordering_key="crash")
    run_ids = [orca.submit(name) for name in ("steady", "quick", "quick")]
    wait_until(lambda: ledger.starts(run_ids[0]), 60, "the first run's script started")
    command_id = orca.runs(run_ids)[run_ids[0]]["command_id"]

    # SIGKILL to the worker alone: the bootstrap it started runs in its own session and
    # lives on, as a script on EC2 outlives the worker that sent it.
    doomed.kill()
    doomed.wait()
    killed_at = time.time()
    workers.start(1, concurrency=1, **TIMINGS)
    states = orca.wait_finished(run_ids, timeout=90)

    assert list(states.values()) == ["succeeded"] * 3, states
    _assert_once_and_in_order(ledger, run_ids)
    assert ledger.ends(run_ids[0])[0] > killed_at, "the first run was not in the middle when killed"
    first = orca.runs(run_ids)[run_ids[0]]
    assert (first["command_id"], first["attempt"], first["exit_code"]) == (command_id, 1, 0)


def test_a_stalled_worker_leaves_a_run_taken_over_meanwhile_to_its_new_owner(
    orca: Orca, ledger: Ledger, workers: Workers
) -> None:
    [stalled] = workers.start(1, concurrency=1, **TIMINGS)
    orca.add_pipeline("steady", ledger.script("steady", "sleep 8"), ordering_key="stall")
    orca.add_pipeline("quick", ledger.script("quick"), ordering_key="stall")
    run_ids = [orca.submit(name) for name in ("steady", "quick")]
    wait_until(lambda: ledger.starts(run_ids[0]), 60, "the first run's script started")

    # Frozen (a long GC pause, a suspended VM): its lease lapses and another worker resumes
    # the run; when it wakes up, the run is no longer its to finish.
    _freeze(stalled, orca)
    try:
        [successor] = workers.start(1, concurrency=1, **TIMINGS)
        wait_until(
            lambda: f":{successor.pid}:" in (orca.runs(run_ids)[run_ids[0]]["lease_owner"] or ""),
            60,
            "the second worker took the run over",
        )
    finally:
        stalled.send_signal(signal.SIGCONT)
    states = orca.wait_finished(run_ids, timeout=90)

    assert list(states.values()) == ["succeeded"] * 2, orca.runs(run_ids)
    _assert_once_and_in_order(ledger, run_ids)
