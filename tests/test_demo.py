"""`orca demo`, the README's main command, on a fresh ORCA_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ORCA = str(Path(sys.executable).with_name("orca"))


@pytest.mark.sandbox
def test_demo_runs_end_to_end_and_leaves_nothing_running(orca_home: Path, tmp_path: Path) -> None:
    # As on a fresh machine: no Prefect configured, so the demo starts its own server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}

    result = subprocess.run([ORCA, "demo"], capture_output=True, text=True, timeout=600, env=env)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "6 runs on 3 ordering keys" in out
    assert out.count("succeeded") >= 5 + 5  # progress lines and the table
    assert "broken-extract" in out and "failed" in out
    assert "day,region,orders,units,revenue" in out  # the ETL's output, read back from S3
    assert "sales_by_region.csv" in out and "summary.json" in out
    # The runs took the SSM path, to the emulated fleet, which was online.
    assert "runner ssm on" in out and "tag:orca=enabled" in out  # a table cell may wrap
    assert out.count(" Online") >= 2
    assert not (orca_home / "sandbox.json").exists()
    status = subprocess.run([ORCA, "local", "status"], capture_output=True, text=True, env=env)
    assert "not running" in status.stdout
