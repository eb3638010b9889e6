"""`orca demo`, the README's main command, on a fresh ORCA_HOME."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ORCA = str(Path(sys.executable).with_name("orca"))


@pytest.mark.sandbox
def test_demo_runs_end_to_end_and_leaves_nothing_running(orca_home: Path) -> None:
    result = subprocess.run([ORCA, "demo"], capture_output=True, text=True, timeout=180)

    assert result.returncode == 0, result.stderr
    assert "hello from orca" in result.stdout
    assert "demo@orca.example" in result.stdout
    assert "sent and received run" in result.stdout
    assert not (orca_home / "sandbox.json").exists()
    status = subprocess.run([ORCA, "local", "status"], capture_output=True, text=True)
    assert "not running" in status.stdout
