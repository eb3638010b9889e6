"""Exactly once, even when a worker dies mid-start (issue 10, point 10).

A worker is killed (SIGKILL, a real process) at each point of the local runner's start:
after recording its intent but before spawning the bootstrap, after spawning it but
before recording its process, and after recording it. A successor with the same state
directory resumes the run as the worker's execution flow does (``find``, then ``start``)
and the script, which appends a line to a file, has run exactly once. The SSM runner is
checked against moto, which records commands and their Comment but runs nothing: a
successor never sends a second command for the same attempt.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orca_flows.domain.s3_layout import exit_code_key, split_s3_uri
from orca_flows.runners import Execution, ExecutionStatus, LocalRunner, RunSpec, SsmRunner
from orca_flows.runners.bootstrap import render_bootstrap
from tests.runners.conftest import until

pytestmark = pytest.mark.sandbox

KILL_POINTS = ("before-spawn", "after-spawn", "after-record")
# A worker that builds a LocalRunner and dies by SIGKILL at the given point of start().
_DYING_WORKER = """
import json, os, signal, sys
from pathlib import Path

import boto3

from orca_flows.runners import LocalRunner, RunSpec

args = json.loads(sys.argv[1])
s3 = boto3.client("s3", endpoint_url=args["endpoint"], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
runner = LocalRunner(args["env"], state_dir=Path(args["state_dir"]), s3_client=s3)
spawn, record = runner._spawn, runner._record


def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)


if args["point"] == "before-spawn":
    runner._spawn = die
elif args["point"] == "after-spawn":
    runner._spawn = lambda spec: die(spawn(spec))
else:
    runner._record = lambda *fields: die(record(*fields))
runner.start(RunSpec(**args["spec"]))
sys.exit("not killed")
"""


def _counting_spec(make_spec: Callable[..., RunSpec], runs: Path, seconds: float = 1) -> RunSpec:
    """A script that appends one line per execution to ``runs`` and then takes a while."""
    return make_spec(
        f'echo ran >>"$RUNS_FILE"\nsleep {seconds}\n',
        "job.sh",
        environment={"RUNS_FILE": str(runs)},
    )


def _executions(runs: Path) -> int:
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def _kill_worker_at(
    point: str, spec: RunSpec, env: dict[str, str], state_dir: Path, endpoint: str
) -> None:
    args = {
        "point": point,
        "spec": dataclasses.asdict(spec),
        "env": env,
        "state_dir": str(state_dir),
        "endpoint": endpoint,
    }
    worker = subprocess.run(
        [sys.executable, "-c", _DYING_WORKER, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert worker.returncode == -9, worker.stderr  # it died where it was meant to


def _resume(runner: LocalRunner, spec: RunSpec) -> Execution:
    # What the execution flow does for a run whose worker died before recording a command.
    return runner.find(spec.execution_key) or runner.start(spec)


@pytest.mark.parametrize("successor", ["at-once", "after-the-first-copy-ended"])
@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_worker_killed_mid_start_runs_the_script_once(
    point: str,
    successor: str,
    make_spec: Callable[..., RunSpec],
    runner_env: dict[str, str],
    state_dir: Path,
    moto_endpoint: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    spec = _counting_spec(make_spec, runs)
    _kill_worker_at(point, spec, runner_env, state_dir, moto_endpoint)
    runner = LocalRunner(runner_env, state_dir=state_dir, s3_client=s3)
    if successor != "at-once" and point != "before-spawn":
        until(lambda: runner.finished(spec), timeout=30)

    execution = _resume(runner, spec)
    status = runner.wait(execution, spec, timeout=60)

    assert status.state == "succeeded", status
    assert _executions(runs) == 1
    # And once more for good measure: a third worker finds the same, starts nothing.
    again = LocalRunner(runner_env, state_dir=state_dir, s3_client=s3)
    assert again.wait(_resume(again, spec), spec, timeout=60).state == "succeeded"
    assert _executions(runs) == 1


def test_two_workers_starting_the_same_attempt_at_once_run_it_once(
    make_spec: Callable[..., RunSpec],
    runner_env: dict[str, str],
    state_dir: Path,
    s3: Any,
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    spec = _counting_spec(make_spec, runs)
    runners = [LocalRunner(runner_env, state_dir=state_dir, s3_client=s3) for _ in range(3)]
    state_dir.mkdir(parents=True)
    # Three bootstraps of one attempt at the same moment, as if no record had held them.
    started: list[Execution] = []
    barrier = threading.Barrier(len(runners))

    def start(runner: LocalRunner) -> None:
        barrier.wait()
        started.append(runner._spawn(spec))

    threads = [threading.Thread(target=start, args=(runner,)) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = [
        runner.wait(ex, spec, timeout=60) for runner, ex in zip(runners, started, strict=True)
    ]

    assert [status.state for status in statuses] == ["succeeded"] * 3
    assert _executions(runs) == 1


def test_a_second_bootstrap_of_a_finished_attempt_runs_nothing(
    local_runner: LocalRunner,
    make_spec: Callable[..., RunSpec],
    runner_env: dict[str, str],
    s3: Any,
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    spec = _counting_spec(make_spec, runs, seconds=0)
    assert local_runner.wait(local_runner.start(spec), spec, timeout=60).state == "succeeded"
    bucket, prefix = split_s3_uri(spec.attempt_uri)
    marker = s3.get_object(Bucket=bucket, Key=exit_code_key(prefix))["Body"].read()

    again = subprocess.run(
        ["bash", "-c", render_bootstrap(spec, host_dir=str(local_runner.host_dir))],
        env=runner_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert again.returncode == 75
    assert "was started on this host already" in again.stderr
    assert _executions(runs) == 1
    assert s3.get_object(Bucket=bucket, Key=exit_code_key(prefix))["Body"].read() == marker


def test_the_next_attempt_of_the_run_runs_again(
    local_runner: LocalRunner, make_spec: Callable[..., RunSpec], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    first = _counting_spec(make_spec, runs, seconds=0)
    second = dataclasses.replace(first, attempt=2)

    for spec in (first, second):
        assert local_runner.wait(local_runner.start(spec), spec, timeout=60).state == "succeeded"

    assert first.execution_key != second.execution_key
    assert _executions(runs) == 2


def test_an_attempt_whose_marker_is_there_is_not_started_again(
    make_spec: Callable[..., RunSpec],
    runner_env: dict[str, str],
    tmp_path: Path,
    s3: Any,
) -> None:
    runs = tmp_path / "runs"
    spec = _counting_spec(make_spec, runs, seconds=0)
    bucket, prefix = split_s3_uri(spec.attempt_uri)
    s3.put_object(Bucket=bucket, Key=exit_code_key(prefix), Body=b'{"exit_code": 0}')
    # Another host's state directory: no record, no claim, only the marker in S3.
    runner = LocalRunner(runner_env, state_dir=tmp_path / "elsewhere", s3_client=s3)

    assert runner.finished(spec) == ExecutionStatus("succeeded", 0)
    assert runner.wait(runner.start(spec), spec, timeout=10).state == "succeeded"
    assert not list((tmp_path / "elsewhere").glob("*.bootstrap.log"))  # nothing spawned
    assert _executions(runs) == 0


# --- SSM: moto records commands (and their Comment) but runs none -------------------------

INSTANCE = "i-0123456789abcdef0"


def _ssm_spec() -> RunSpec:
    """A run of its own (the emulator keeps every command of the session)."""
    run_id = str(uuid.uuid4())
    return RunSpec(
        run_id=run_id,
        pipeline="x",
        script_uri="s3://orca-bucket/orca/7/x/scripts/v1/job.sh",
        script_sha256="ab" * 32,
        script_name="job.sh",
        output_uri=f"s3://orca-bucket/orca/7/x/runs/{run_id}/",
        timeout_seconds=60,
    )


class _Killed(BaseException):
    """The worker dying at this point: nothing after it runs."""


def _ssm_runner(client: Any) -> SsmRunner:
    return SsmRunner(
        client, targets=[INSTANCE], output_bucket="orca-bucket", output_key_prefix="orca/7/x/ssm"
    )


def _commands_for(client: Any, spec: RunSpec) -> list[str]:
    pages = client.get_paginator("list_commands").paginate()
    return [
        command["CommandId"]
        for page in pages
        for command in page["Commands"]
        if command["Comment"] == spec.execution_key
    ]


@pytest.mark.parametrize("point", ["before-send", "after-send", "after-record"])
def test_a_worker_killed_mid_start_sends_one_ssm_command(
    point: str, ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _ssm_spec()
    first = _ssm_runner(ssm)
    send = first._send

    def dying_send(*args: Any, **kwargs: Any) -> Any:
        if point == "after-send":
            send(*args, **kwargs)
        raise _Killed

    if point != "after-record":
        monkeypatch.setattr(first, "_send", dying_send)
        with pytest.raises(_Killed):
            first.start(spec)
    else:
        first.start(spec)

    resumed = _ssm_runner(ssm)
    execution = resumed.find(spec.execution_key) or resumed.start(spec)

    assert _commands_for(ssm, spec) == [execution.command_id]
    assert execution.instance_id == INSTANCE
    # Another attempt of the same run is a new command, never mistaken for this one.
    retry = dataclasses.replace(spec, attempt=2)
    assert resumed.find(retry.execution_key) is None


def test_the_execution_key_fits_an_ssm_comment() -> None:
    spec = dataclasses.replace(_ssm_spec(), attempt=11)

    assert spec.execution_key == f"{spec.run_id}-a11"
    assert len(spec.execution_key) <= 100
