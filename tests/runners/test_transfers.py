"""The bootstrap's script, log and marker go through presigned URLs with curl (no AWS CLI
start), and through the CLI when a URL is refused: the run reports either way."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orca_flows.runners import LocalRunner, RunSpec
from orca_flows.runners.transfers import presign_transfers

pytestmark = pytest.mark.sandbox

Objects = Callable[[RunSpec], dict[str, bytes]]


@pytest.fixture
def counted(
    tmp_path: Path, runner_env: dict[str, str], state_dir: Path, s3: Any
) -> tuple[LocalRunner, Path]:
    """A local runner whose PATH starts with an `aws` that records each call, then runs
    the real CLI (how many CLI starts a run pays), and the file of those calls."""
    shim_dir, calls = tmp_path / "shim", tmp_path / "aws-calls"
    shim_dir.mkdir()
    real = Path(sys.executable).with_name("aws")
    shim = shim_dir / "aws"
    shim.write_text(f'#!/bin/bash\necho "$*" >>{calls}\nexec {real} "$@"\n')
    shim.chmod(0o755)
    env = {**runner_env, "PATH": f"{shim_dir}:{runner_env['PATH']}"}
    return LocalRunner(env, state_dir=state_dir, s3_client=s3), calls


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _run(runner: LocalRunner, spec: RunSpec) -> Any:
    status = runner.wait(runner.start(spec), spec, timeout=60)
    assert status.finished, status
    return status


def test_a_run_with_presigned_transfers_starts_no_aws_cli(
    counted: tuple[LocalRunner, Path],
    s3: Any,
    make_spec: Callable[..., RunSpec],
    run_objects: Objects,
) -> None:
    runner, calls = counted
    spec = make_spec("echo hello from the script\n", "job.sh")

    status = _run(runner, spec)

    assert (status.state, status.exit_code) == ("succeeded", 0)
    objects = run_objects(spec)
    assert b"hello from the script" in objects["log"]
    assert json.loads(objects["exit-code"])["exit_code"] == 0
    head = s3.head_object(Bucket=spec.attempt_uri.split("/")[2], Key=_key(spec, "log"))
    assert head["ContentType"] == "text/plain; charset=utf-8"
    assert _calls(calls) == [], "a run without outputs paid AWS CLI starts"


def test_refused_urls_fall_back_to_the_cli_and_the_run_reports(
    counted: tuple[LocalRunner, Path],
    make_spec: Callable[..., RunSpec],
    run_objects: Objects,
    refused_urls: None,
) -> None:
    runner, calls = counted
    spec = make_spec("echo still reported\n", "job.sh")

    status = _run(runner, spec)

    assert (status.state, status.exit_code) == ("succeeded", 0)
    assert b"still reported" in run_objects(spec)["log"]
    made = _calls(calls)
    assert any("s3 cp s3://" in call for call in made), made  # the script, by the CLI
    assert any("exit-code" in call for call in made), made  # the marker, by the CLI


def test_presigned_urls_name_only_the_attempts_own_objects(
    s3: Any, make_spec: Callable[..., RunSpec]
) -> None:
    spec = make_spec("true\n", "job.sh")
    transfers = presign_transfers(s3, spec)
    assert transfers is not None
    bucket, script_key = spec.script_uri.removeprefix("s3://").split("/", 1)
    assert f"/{bucket}/{script_key}?" in transfers.script_get
    assert f"/{_key(spec, 'log')}?" in transfers.log_put
    assert f"/{_key(spec, 'exit-code')}?" in transfers.marker_put
    assert "X-Amz-Expires=" in transfers.log_put


def _key(spec: RunSpec, name: str) -> str:
    return spec.attempt_uri.split("/", 3)[3] + name
