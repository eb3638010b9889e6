"""`orca run stop` on a running run: the script and its children die, the key moves on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.execution.conftest import Ledger, Orca, Workers, gone, wait_until

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]


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
    assert not gone(script_pid) and not gone(child_pid)

    stopping = time.time()
    orca.cli("run", "stop", forever)

    wait_until(lambda: gone(script_pid) and gone(child_pid), 10, "script and child killed")
    wait_until(lambda: orca.show(forever)["state"] == "cancelled", 30, "the stop confirmed")
    assert orca.wait_finished([after], timeout=60) == {after: "succeeded"}
    assert ledger.starts(after)[0] > stopping
    assert ledger.ends(forever) == [], "the stopped script ran to its end"
    # The worker that watched it did not overwrite the stop with a state of its own.
    assert orca.show(forever)["state"] == "cancelled"
