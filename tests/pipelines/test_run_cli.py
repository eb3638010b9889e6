"""`orca run start | stop | list | show | logs` and their refusals (the worker is real)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orca_flows.prefect_adapter.link_access import LinkAccess
from tests.pipelines.conftest import listed, orca, queued_messages

ORCA = str(Path(sys.executable).with_name("orca"))


@pytest.fixture
def pipeline(tmp_path: Path, access: LinkAccess) -> str:
    script = tmp_path / "hello.py"
    script.write_text(
        "import os, pathlib\n"
        "print('hello from', os.environ['ORCA_PIPELINE'])\n"
        "pathlib.Path(os.environ['ORCA_OUTPUT_DIR'], 'result.csv').write_text('a,b\\n1,2\\n')\n"
    )
    assert orca("pipeline", "add", "hello", str(script), "--link", "dev").exit_code == 0
    return "hello"


def _worker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ORCA, "worker", *args], capture_output=True, text=True, timeout=120)


def test_a_run_goes_from_queued_to_succeeded_with_log_and_outputs(pipeline: str) -> None:
    run_id = orca("run", "start", pipeline).stdout.strip()
    queued = listed("run", "show", run_id)

    worker = _worker("--max-runs", "1", "--idle-exit", "60")
    shown = listed("run", "show", run_id)
    logs = orca("run", "logs", run_id)

    assert queued["state"] == "queued" and queued["sequence"] == 1
    assert worker.returncode == 0, worker.stderr
    assert shown["state"] == "succeeded" and shown["exit_code"] == 0 and shown["attempt"] == 1
    for key in (
        "ordering_key",
        "requested_at",
        "started_at",
        "finished_at",
        "command_id",
        "flow_run_id",
        "log_uri",
    ):
        assert shown[key], key
    assert shown["script_version"] == 1
    assert shown["outputs"] == [
        f"s3://orca-sandbox/orca/1/hello/runs/{run_id}/attempts/1/outputs/result.csv"
    ]
    assert shown["log_uri"] == f"s3://orca-sandbox/orca/1/hello/runs/{run_id}/attempts/1/log"
    assert "hello from hello" in logs.stdout
    assert [
        run["id"] for run in listed("run", "list", "--pipeline", pipeline, "--state", "succeeded")
    ] == [run_id]


def test_start_wait_exits_zero_only_when_the_run_succeeded(pipeline: str, tmp_path: Path) -> None:
    worker = subprocess.Popen(
        [ORCA, "worker", "--idle-exit", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        succeeded = subprocess.run(
            [ORCA, "run", "start", pipeline, "--wait"], capture_output=True, text=True, timeout=120
        )
        failing = tmp_path / "fail.sh"
        failing.write_text("echo no; exit 4\n")
        orca("pipeline", "upload", pipeline, str(failing))
        failed = subprocess.run(
            [ORCA, "run", "start", pipeline, "--wait"], capture_output=True, text=True, timeout=120
        )
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    assert succeeded.returncode == 0, succeeded.stderr
    assert "succeeded" in succeeded.stderr
    assert failed.returncode == 1
    assert "failed" in failed.stderr and "exited with 4" in failed.stderr


def test_a_stopped_queued_run_is_cancelled_and_never_executes(pipeline: str) -> None:
    run_id = orca("run", "start", pipeline).stdout.strip()

    stopped = orca("run", "stop", run_id)
    worker = _worker("--idle-exit", "8")

    assert stopped.exit_code == 0 and "was queued" in stopped.stdout
    shown = listed("run", "show", run_id)
    assert (
        shown["state"] == "cancelled"
        and shown["started_at"] is None
        and shown["command_id"] is None
    )
    assert "finishing 0 run(s)" in worker.stdout


def test_stopping_a_finished_run_says_it_is_finished(pipeline: str) -> None:
    run_id = orca("run", "start", pipeline).stdout.strip()
    _worker("--max-runs", "1", "--idle-exit", "60")

    result = orca("run", "stop", run_id)

    assert result.exit_code == 1
    assert "has already finished (succeeded)" in result.stderr


def test_unknown_pipeline_leaves_no_run_and_no_message(access: LinkAccess) -> None:
    result = orca("run", "start", "nope")

    assert result.exit_code == 1 and "pipeline 'nope' does not exist" in result.stderr
    assert listed("run", "list") == []
    assert queued_messages(access) == 0


@pytest.mark.parametrize("command", ["show", "stop", "logs"])
def test_unknown_run_id_is_a_clear_error(access: LinkAccess, command: str) -> None:
    result = orca("run", command, "00000000-0000-0000-0000-000000000000")

    assert result.exit_code == 1
    assert "run '00000000-0000-0000-0000-000000000000' does not exist" in result.stderr


def test_another_users_run_looks_like_no_run(pipeline: str) -> None:
    run_id = orca("run", "start", pipeline).stdout.strip()
    orca("user", "add", "bob@example.com", "--password-stdin", input="correct horse battery")

    for command in ("show", "stop", "logs"):
        result = orca("run", command, run_id, "--user", "bob@example.com")
        assert result.exit_code == 1 and "does not exist" in result.stderr
    assert listed("run", "show", run_id)["state"] == "queued"  # bob's stop did nothing


def test_list_refuses_an_unknown_state(access: LinkAccess) -> None:
    result = orca("run", "list", "--state", "done")

    assert result.exit_code == 1 and "must be one of: queued, running" in result.stderr
