"""What a local run's script sees (issue 10, point 1): the script contract's variables and
the link's AWS keys, nothing of Orca's own (settings, database URL, Prefect), and a HOME
of its own that is never ORCA_HOME."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from orca_flows.runners import LocalRunner, RunSpec
from orca_flows.runners.factory import _local_env
from orca_flows.settings import get_settings

pytestmark = pytest.mark.sandbox

CONTRACT = {"ORCA_RUN_ID", "ORCA_PIPELINE", "ORCA_OUTPUT_DIR"}
DATABASE_URL = "mysql+pymysql://orca:s3cret-password@db.internal/orca"
PRINT_ENV = """
import json, os
home = os.environ.get("HOME", "")
with open(os.path.join(home, "probe"), "w") as f:  # HOME is there and writable
    f.write("x")
print("ENV " + json.dumps(dict(os.environ)))
"""


def _link_access(endpoint: str) -> Any:
    """What ``_local_env`` reads of a link's access: its session, region and endpoint."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return SimpleNamespace(
        factory=SimpleNamespace(session=session, endpoint_url=endpoint),
        credentials=SimpleNamespace(region_name="us-east-1"),
    )


def _script_env(log: bytes) -> dict[str, str]:
    line = next(line for line in log.decode().splitlines() if line.startswith("ENV "))
    return json.loads(line.removeprefix("ENV "))


def _run_printing_env(moto_endpoint: str, state_dir: Path, s3: Any, spec: RunSpec) -> None:
    runner = LocalRunner(_local_env(_link_access(moto_endpoint)), state_dir=state_dir, s3_client=s3)
    status = runner.wait(runner.start(spec), spec, timeout=60)
    assert (status.state, status.exit_code) == ("succeeded", 0), status


@pytest.fixture
def worker_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The worker's own environment: Orca's settings, its database, its Prefect."""
    monkeypatch.setenv("ORCA_DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("ORCA_ALLOW_LOCAL_RUNNER", "true")
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.internal:4200/api")
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_secret")
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "admin:secret")
    monkeypatch.setenv("HOME", str(get_settings().home))


def test_a_local_script_sees_none_of_orcas_environment(
    worker_environment: None,
    moto_endpoint: str,
    state_dir: Path,
    s3: Any,
    make_spec: Callable[..., RunSpec],
    run_objects: Callable[[RunSpec], dict[str, bytes]],
) -> None:
    spec = make_spec(PRINT_ENV, "env.py")

    _run_printing_env(moto_endpoint, state_dir, s3, spec)

    env = _script_env(run_objects(spec)["log"])
    assert {name for name in env if name.startswith("ORCA_")} == CONTRACT
    assert not [name for name in env if name.startswith("PREFECT_")]
    assert not [name for name, value in env.items() if "s3cret-password" in value]
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["PATH"] == f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    orca_home = get_settings().home
    home = Path(env["HOME"])
    assert home != orca_home and orca_home not in home.parents
    assert not home.exists(), "the run's HOME outlived the run"


def test_each_execution_has_a_home_of_its_own(
    worker_environment: None,
    moto_endpoint: str,
    state_dir: Path,
    s3: Any,
    make_spec: Callable[..., RunSpec],
    run_objects: Callable[[RunSpec], dict[str, bytes]],
) -> None:
    first, second = make_spec(PRINT_ENV, "env.py"), make_spec(PRINT_ENV, "env.py")

    for spec in (first, second):
        _run_printing_env(moto_endpoint, state_dir, s3, spec)

    homes = {_script_env(run_objects(spec)["log"])["HOME"] for spec in (first, second)}
    assert len(homes) == 2
    assert os.environ["HOME"] not in homes
