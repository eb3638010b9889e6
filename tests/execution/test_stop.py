"""`orca run stop` on a running run: the script and its children die, the key moves on."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.execution.conftest import Ledger, Orca, Workers, wait_until

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]


def _gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie has exited; only its reaping is pending)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where the script writes its pid and its child's; both are killed at teardown anyway."""
    path = tmp_path / "pids"
    yield path
    for pid in map(int, path.read_text().split() if path.exists() else []):
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_stop_kills_the_script_and_its_child_and_the_next_run_of_the_key_starts(
    orca: Orca, ledger: Ledger, workers: Workers, pid_file: Path
) -> None:
    workers.start(1)
    body = f'sleep 300 &\necho "$$ $!" >{pid_file}.tmp && mv {pid_file}.tmp {pid_file}\nsleep 300'
    orca.add_pipeline("forever", ledger.script("forever", body), ordering_key="stoppable")
    orca.add_pipeline("next", ledger.script("next"), ordering_key="stoppable")
    forever, after = orca.submit("forever"), orca.submit("next")
    wait_until(pid_file.exists, 60, "the script started its child")
    script_pid, child_pid = map(int, pid_file.read_text().split())
    assert not _gone(script_pid) and not _gone(child_pid)

    stopping = time.time()
    orca.cli("run", "stop", forever)

    wait_until(lambda: _gone(script_pid) and _gone(child_pid), 5, "script and child killed")
    assert orca.show(forever)["state"] == "cancelled"
    assert orca.wait_finished([after], timeout=60) == {after: "succeeded"}
    assert ledger.starts(after)[0] > stopping
    assert ledger.ends(forever) == [], "the stopped script ran to its end"
    # The worker that watched it did not overwrite the stop with a state of its own.
    assert orca.show(forever)["state"] == "cancelled"
