"""Timeouts inside AWS's bounds (issue 10, point 13, runner side): the time the bootstrap
takes to upload after its script never turns a successful script into ``timed_out``."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orca_flows.domain.limits import (
    KILL_AFTER_SECONDS,
    MAX_PIPELINE_TIMEOUT_SECONDS,
    SSM_MAX_EXECUTION_TIMEOUT_SECONDS,
    UPLOAD_GRACE_SECONDS,
    execution_timeout_seconds,
)
from orca_flows.runners import LocalRunner, RunSpec, SsmRunner
from orca_flows.runners import bootstrap as bootstrap_module

Objects = Callable[[RunSpec], dict[str, bytes]]
# Finishes inside its 3 s timeout, leaving an output to upload.
JUST_IN_TIME = 'sleep 1.5\necho done >"$ORCA_OUTPUT_DIR/result.txt"\n'


def _slow_upload_env(runner_env: dict[str, str], tmp_path: Path, seconds: int) -> dict[str, str]:
    """The runner's environment with an aws CLI whose outputs upload takes ``seconds``."""
    real_aws = Path(runner_env["PATH"].split(":")[0]) / "aws"
    bin_dir = tmp_path / "slow-bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "aws"
    wrapper.write_text(
        "#!/bin/bash\n"
        f'for arg; do [ "$arg" = --recursive ] && sleep {seconds}; done\n'
        f'exec {real_aws} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return {**runner_env, "PATH": f"{bin_dir}{os.pathsep}{runner_env['PATH']}"}


@pytest.mark.sandbox
def test_a_script_done_just_inside_its_timeout_succeeds_however_long_the_upload(
    make_spec: Callable[..., RunSpec],
    runner_env: dict[str, str],
    state_dir: Path,
    s3: Any,
    run_objects: Objects,
    tmp_path: Path,
) -> None:
    # The upload alone takes longer than the script's whole timeout.
    runner = LocalRunner(
        _slow_upload_env(runner_env, tmp_path, 4), state_dir=state_dir, s3_client=s3
    )
    spec = make_spec(JUST_IN_TIME, "job.sh", timeout_seconds=3)

    status = runner.wait(runner.start(spec), spec, timeout=60)

    assert (status.state, status.exit_code) == ("succeeded", 0)
    objects = run_objects(spec)
    assert objects["outputs/result.txt"] == b"done\n"
    assert json.loads(objects["exit-code"])["timed_out"] is False


@pytest.mark.sandbox
def test_an_upload_past_the_grace_fails_the_run_with_its_reason_not_as_timed_out(
    make_spec: Callable[..., RunSpec],
    runner_env: dict[str, str],
    state_dir: Path,
    s3: Any,
    run_objects: Objects,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap_module, "UPLOAD_GRACE_SECONDS", 1)
    runner = LocalRunner(
        _slow_upload_env(runner_env, tmp_path, 30), state_dir=state_dir, s3_client=s3
    )
    spec = make_spec(JUST_IN_TIME, "job.sh", timeout_seconds=3)

    status = runner.wait(runner.start(spec), spec, timeout=60)

    assert status.state == "failed"
    assert "ORCA_OUTPUT_DIR could not be uploaded" in status.detail
    assert json.loads(run_objects(spec)["exit-code"])["error"] == "outputs-upload-failed"


@pytest.mark.parametrize("timeout", [3, 900, MAX_PIPELINE_TIMEOUT_SECONDS])
def test_ssm_gives_the_bootstrap_its_timeout_the_grace_and_its_own_steps(
    ssm: Any, timeout: int
) -> None:
    run_id = str(uuid.uuid4())
    spec = RunSpec(
        run_id=run_id,
        pipeline="x",
        script_uri="s3://orca-bucket/orca/7/x/scripts/v1/job.sh",
        script_sha256="ab" * 32,
        script_name="job.sh",
        output_uri=f"s3://orca-bucket/orca/7/x/runs/{run_id}/",
        timeout_seconds=timeout,
    )
    runner = SsmRunner(
        ssm, targets=["i-0123456789abcdef0"], output_bucket="orca-bucket", output_key_prefix="p"
    )

    runner.start(spec)

    pages = ssm.get_paginator("list_commands").paginate()
    (command,) = [c for p in pages for c in p["Commands"] if c["Comment"] == spec.execution_key]
    sent = int(command["Parameters"]["executionTimeout"][0])
    # The script may run its timeout plus the kill-after, then upload for the grace.
    assert sent >= timeout + KILL_AFTER_SECONDS + UPLOAD_GRACE_SECONDS
    assert sent <= SSM_MAX_EXECUTION_TIMEOUT_SECONDS
    assert sent == execution_timeout_seconds(timeout)
