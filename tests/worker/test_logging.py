"""`orca worker`'s output: INFO from every Orca module, each line printed once.

A real `orca worker` process (Prefect configures logging on import there, as it does for
users), with no links and ``--idle-exit 0`` so that it starts, sweeps and stops at once.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from orca_flows.logs import configure_logging, get_logger

# The worker as `orca worker` runs it; a probe logs from two modules outside the worker
# (as a use case and a runner do while it works), from inside the command.
_WORKER = """
import sys
from orca_flows.cli.main import app
from orca_flows.logs import get_logger
from orca_flows.runners import local
from orca_flows.worker import worker

refresh = worker.Worker.refresh_links

async def refresh_and_probe(self):
    get_logger("orca_flows.services.runs").info("probe from the services")
    local.logger.info("probe from a runner")
    await refresh(self)

worker.Worker.refresh_links = refresh_and_probe
sys.argv = ["orca", "worker", "--idle-exit", "0"]
app()
"""


def test_orca_worker_prints_info_from_every_orca_module_once(orca_home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WORKER],
        capture_output=True,
        text=True,
        timeout=120,
    )

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    lines = output.splitlines()
    for text in ("probe from the services", "probe from a runner", "started (concurrency 4)"):
        printed = [line for line in lines if text in line]
        assert len(printed) == 1, (text, output)
    assert any("orca.services.runs" in line for line in lines), output
    assert any("orca.runners.local" in line for line in lines), output
    assert "Worker stopped after finishing 0 run(s)." in output


def test_configure_logging_adds_a_handler_only_where_none_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # no Prefect console, no pytest capture
    orca = logging.getLogger("orca")
    monkeypatch.setattr(orca, "level", orca.level)

    configure_logging()
    configure_logging()  # again: still one handler
    get_logger("orca_flows.services.runs").info("once")
    get_logger("orca_flows.services.runs").debug("hidden")

    assert len(root.handlers) == 1
    err = capsys.readouterr().err
    assert err.count("once") == 1 and "orca.services.runs" in err
    assert "hidden" not in err
