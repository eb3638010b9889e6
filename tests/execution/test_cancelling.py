"""Stop means the process is gone: a stopped run is `cancelling` until its process is
confirmed dead, and only then `cancelled` and its key released."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orca_flows.cli.main import app
from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import Run
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.states import RunState
from tests.execution.conftest import Ledger, Orca, Workers, gone, wait_until

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]


def _stubborn(ledger: Ledger, key: str, pid_file: Path) -> str:
    """A script body that traps SIGTERM and exits 8 s later, stamping ``dying`` meanwhile
    (its pid in ``pid_file``); it never reaches its ``end`` stamp."""
    dying = ledger.stamp_command("dying", key)
    return (
        "on_term() {\n"
        "  for _ in $(seq 16); do\n"
        f"    {dying}\n"
        "    sleep 0.5\n"
        "  done\n"
        "  exit 143\n"
        "}\n"
        "trap on_term TERM\n"
        f'echo "$$" >{pid_file}.tmp && mv {pid_file}.tmp {pid_file}\n'
        "sleep 300 &\n"
        "wait $!"  # a wait returns on the signal, so the trap runs at once
    )


def _dying_stamps(ledger: Ledger, run_id: str) -> list[float]:
    """When the stopped script was still alive, after its SIGTERM."""
    return [s.at for s in ledger.stamps() if s.event == "dying" and s.run_id == run_id]


def test_a_stopped_run_is_cancelling_while_its_script_lives_and_the_next_run_waits(
    orca: Orca, ledger: Ledger, workers: Workers, pid_file: Path
) -> None:
    workers.start(1)
    body = _stubborn(ledger, "stubborn", pid_file)
    orca.add_pipeline("stubborn", ledger.script("stubborn", body), ordering_key="dying")
    orca.add_pipeline("next", ledger.script("next"), ordering_key="dying")
    stubborn, after = orca.submit("stubborn"), orca.submit("next")
    wait_until(pid_file.exists, 60, "the script started")
    pid = int(pid_file.read_text())

    said = orca.cli("run", "stop", stubborn)

    assert "it is now cancelling" in said
    assert orca.show(stubborn)["state"] == "cancelling" and not gone(pid)
    again = orca.cli("run", "stop", stubborn)  # a second stop, while it dies
    assert f"Run {stubborn} was cancelling" in again
    assert orca.wait_finished([stubborn, after], timeout=90) == {
        stubborn: "cancelled",
        after: "succeeded",
    }
    dying = _dying_stamps(ledger, stubborn)
    assert dying, "the script was not alive while the run was cancelling"
    assert ledger.starts(after)[0] > max(dying), "the next run started before the script died"
    assert ledger.ends(stubborn) == []
    assert orca.show(stubborn)["error"] == "stopped by the user"


def test_a_stop_before_the_command_id_was_recorded_finds_the_execution_and_kills_it(
    orca: Orca, ledger: Ledger, workers: Workers, pid_file: Path
) -> None:
    [doomed] = workers.start(1, concurrency=1)
    body = f'echo "$$" >{pid_file}.tmp && mv {pid_file}.tmp {pid_file}\nsleep 300'
    orca.add_pipeline("orphan", ledger.script("orphan", body), ordering_key="orphaned")
    orca.add_pipeline("next", ledger.script("next"), ordering_key="orphaned")
    orphan, after = orca.submit("orphan"), orca.submit("next")
    wait_until(pid_file.exists, 60, "the script started")
    pid = int(pid_file.read_text())
    # The worker dies after its runner recorded the execution, before Orca stored the
    # command id; its lease lapses. (The bootstrap lives on in its own session.)
    doomed.kill()
    doomed.wait()
    with session_scope(orca.settings.effective_database_url) as session:
        session.query(Run).filter(Run.id == orphan).update(
            {
                "command_id": None,
                "instance_id": None,
                "lease_expires_at": utcnow() - timedelta(seconds=1),
            }
        )

    orca.cli("run", "stop", orphan)

    assert gone(pid), "the stop did not find and kill the execution"
    assert orca.show(orphan)["state"] == "cancelled"
    workers.start(1)
    assert orca.wait_finished([after], timeout=90) == {after: "succeeded"}
    assert ledger.ends(orphan) == []


def test_a_stop_that_loses_the_race_to_a_finishing_run_says_it_had_finished(
    orca: Orca, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    orca.add_pipeline("quick", ledger.script("quick"))
    run_id = orca.submit("quick")
    with session_scope(orca.settings.effective_database_url) as session:
        assert runs_repo.compare_and_set_state(
            session, run_id, RunState.QUEUED, RunState.RUNNING, attempt=1, started_at=utcnow()
        )
    mark = runs_repo.mark_stop_requested

    def finished_first(session: object, run: str, moment: object) -> bool:
        # The worker's finish lands between the stop's read and its compare-and-set.
        session.query(Run).filter(Run.id == run).update(  # type: ignore[attr-defined]
            {"state": RunState.SUCCEEDED, "finished_at": utcnow()},
            synchronize_session=False,
        )
        return mark(session, run, moment)  # type: ignore[arg-type]

    monkeypatch.setattr(runs_repo, "mark_stop_requested", finished_first)
    result = CliRunner().invoke(app, ["run", "stop", run_id])

    assert result.exit_code == 1
    # The state the finish left, not the "running" the stop read before it.
    assert f"run {run_id} has already finished (succeeded); nothing to stop." in result.stderr


def test_a_stop_whose_kill_cannot_be_confirmed_stays_cancelling_and_the_key_waits(
    orca: Orca,
    ledger: Ledger,
    workers: Workers,
    pid_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [doomed] = workers.start(1, concurrency=1)
    body = f'echo "$$" >{pid_file}.tmp && mv {pid_file}.tmp {pid_file}\nsleep 300'
    orca.add_pipeline("unreachable", ledger.script("unreachable", body), ordering_key="stuck")
    orca.add_pipeline("next", ledger.script("next"), ordering_key="stuck")
    stuck, after = orca.submit("unreachable"), orca.submit("next")
    wait_until(pid_file.exists, 60, "the script started")
    pid = int(pid_file.read_text())
    doomed.kill()
    doomed.wait()
    with session_scope(orca.settings.effective_database_url) as session:
        session.query(Run).filter(Run.id == stuck).update(
            {"lease_expires_at": utcnow() - timedelta(seconds=1)}
        )
    # This stop's kill never reaches the process (an instance gone offline, say).
    monkeypatch.setattr("orca_flows.runners.LocalRunner.stop", lambda *_: None)
    monkeypatch.setenv("ORCA_STOP_CONFIRM_SECONDS", "2")

    said = orca.cli("run", "stop", stuck)

    assert "could not be confirmed dead within 2 s" in said
    shown = orca.show(stuck)
    assert shown["state"] == "cancelling" and "the next runs of its key wait" in shown["error"]
    assert not gone(pid) and orca.states([after]) == {after: "queued"}
    # A worker takes the run over, kills the script for real and only then moves on.
    workers.start(1)
    assert orca.wait_finished([stuck, after], timeout=90) == {
        stuck: "cancelled",
        after: "succeeded",
    }
    assert gone(pid)
