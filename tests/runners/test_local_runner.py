"""The local runner runs the real bootstrap against a moto server over HTTP."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orca_flows.runners import ExecutionStatus, LocalRunner, RunSpec
from tests.runners.conftest import until

pytestmark = pytest.mark.sandbox

Objects = Callable[[RunSpec], dict[str, bytes]]


def _process_running(pid: int) -> bool:
    # A zombie has already died; only its parent has not collected it yet.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _run(runner: LocalRunner, spec: RunSpec, timeout: float = 60) -> ExecutionStatus:
    status = runner.wait(runner.start(spec), spec, timeout=timeout)
    assert status.finished, status
    return status


PYTHON_SCRIPT = """
import json, os
print("starting", flush=True)
seen = {
    "cwd": os.getcwd(),
    "cwd_entries": os.listdir("."),
    "env": {k: os.environ.get(k) for k in ("ORCA_RUN_ID", "ORCA_PIPELINE", "ORCA_OUTPUT_DIR")},
}
print("SEEN " + json.dumps(seen))
out = os.environ["ORCA_OUTPUT_DIR"]
with open(os.path.join(out, "result.csv"), "w") as f:
    f.write("a,b\\n1,2\\n")
os.makedirs(os.path.join(out, "sub"))
with open(os.path.join(out, "sub", "x.txt"), "w") as f:
    f.write("nested")
print("done")
"""


def _seen(log: bytes) -> dict[str, Any]:
    line = next(line for line in log.decode().splitlines() if line.startswith("SEEN "))
    return json.loads(line.removeprefix("SEEN "))


def test_python_script_succeeds_with_log_outputs_and_marker(
    local_runner: LocalRunner, make_spec: Callable[..., RunSpec], run_objects: Objects
) -> None:
    spec = make_spec(PYTHON_SCRIPT, "etl.py")

    status = _run(local_runner, spec)

    assert (status.state, status.exit_code) == ("succeeded", 0)
    objects = run_objects(spec)
    assert set(objects) == {"log", "exit-code", "outputs/result.csv", "outputs/sub/x.txt"}
    assert b"starting" in objects["log"] and b"done" in objects["log"]
    assert objects["outputs/result.csv"] == b"a,b\n1,2\n"
    assert objects["outputs/sub/x.txt"] == b"nested"
    marker = json.loads(objects["exit-code"])
    assert marker["exit_code"] == 0
    assert (marker["timed_out"], marker["sha256_ok"], marker["cancelled"]) == (False, True, False)
    assert marker["finished_at"].endswith("Z")
    seen = _seen(objects["log"])
    assert seen["env"]["ORCA_RUN_ID"] == spec.run_id
    assert seen["env"]["ORCA_PIPELINE"] == "demo"
    assert seen["cwd_entries"] == []
    assert seen["env"]["ORCA_OUTPUT_DIR"] != seen["cwd"]
    # The working directory is fresh per run and cleaned up afterwards.
    assert not os.path.exists(seen["cwd"])


def test_shell_script_exit_code_fails_the_run(
    local_runner: LocalRunner, make_spec: Callable[..., RunSpec], run_objects: Objects
) -> None:
    spec = make_spec("echo about to fail >&2\nexit 3\n", "job.sh")

    status = _run(local_runner, spec)

    assert (status.state, status.exit_code) == ("failed", 3)
    assert b"about to fail" in run_objects(spec)["log"]  # stderr is part of the log


def test_script_past_its_timeout_is_killed(
    local_runner: LocalRunner, make_spec: Callable[..., RunSpec], run_objects: Objects
) -> None:
    spec = make_spec("import time\ntime.sleep(60)\n", "etl.py", timeout_seconds=2)
    started = time.monotonic()

    status = _run(local_runner, spec)

    assert (status.state, status.exit_code) == ("timed_out", 124)
    assert time.monotonic() - started < 20
    marker = json.loads(run_objects(spec)["exit-code"])
    assert (marker["exit_code"], marker["timed_out"]) == (124, True)


def test_tampered_script_is_never_run(
    local_runner: LocalRunner,
    make_spec: Callable[..., RunSpec],
    run_objects: Objects,
    tmp_path: Path,
) -> None:
    evidence = tmp_path / "the-script-ran"
    spec = make_spec(f"touch {evidence}\n", "job.sh", script_sha256="0" * 64)

    status = _run(local_runner, spec)

    assert (status.state, status.exit_code) == ("failed", 1)
    assert "sha256" in status.detail
    assert not evidence.exists()
    objects = run_objects(spec)
    assert json.loads(objects["exit-code"])["sha256_ok"] is False
    assert b"sha256" in objects["log"]


def test_log_is_in_s3_while_the_script_runs(
    local_runner: LocalRunner, make_spec: Callable[..., RunSpec], run_objects: Objects
) -> None:
    spec = make_spec("print('first line')\nimport time\ntime.sleep(3)\nprint('second line')\n")
    execution = local_runner.start(spec)

    live_log = until(lambda: run_objects(spec).get("log"), timeout=10)

    assert b"first line" in live_log and b"second line" not in live_log
    assert local_runner.status(execution, spec).state == "running"
    final = local_runner.wait(execution, spec, timeout=30)
    assert final.state == "succeeded"
    assert b"second line" in run_objects(spec)["log"]


def test_stop_kills_the_script_and_its_children(
    local_runner: LocalRunner, make_spec: Callable[..., RunSpec], tmp_path: Path
) -> None:
    pids_file = tmp_path / "pids"
    script = f"sleep 300 &\necho $! >>{pids_file}\necho $$ >>{pids_file}\nsleep 300\n"
    spec = make_spec(script, "job.sh")
    execution = local_runner.start(spec)
    pids = until(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2)
    pids = [int(pid) for pid in pids_file.read_text().split()]
    assert all(_process_running(pid) for pid in pids)

    local_runner.stop(execution, spec)

    until(lambda: not any(_process_running(pid) for pid in pids), timeout=10)
    status = local_runner.wait(execution, spec, timeout=30)
    assert status.state == "cancelled"


def test_restarted_worker_finds_and_resumes_the_same_execution(
    local_runner: LocalRunner,
    make_spec: Callable[..., RunSpec],
    runner_env: dict[str, str],
    state_dir: Path,
    s3: Any,
    tmp_path: Path,
) -> None:
    starts = tmp_path / "starts"
    spec = make_spec(f"echo started >>{starts}\nsleep 2\n", "job.sh")
    execution = local_runner.start(spec)
    restarted = LocalRunner(runner_env, state_dir=state_dir, s3_client=s3)

    assert restarted.find(spec.execution_key) == execution
    assert restarted.start(spec) == execution  # resumes: no second bootstrap
    assert restarted.wait(execution, spec, timeout=30).state == "succeeded"
    assert starts.read_text() == "started\n"
    assert restarted.find("0b3c3d51-0000-4000-8000-000000000000") is None


def test_values_with_shell_syntax_reach_the_script_literally(
    local_runner: LocalRunner,
    make_spec: Callable[..., RunSpec],
    run_objects: Objects,
    tmp_path: Path,
) -> None:
    evil = f'it\'s "$(touch {tmp_path}/a)" `touch {tmp_path}/b` $HOME ${{X}} \\ ;|&\nline 2'
    script = "import json, os\nprint('SEEN ' + json.dumps(dict(os.environ)))\n"
    spec = make_spec(script, pipeline=evil, environment={"EVIL": evil, "PLAIN": "x"})

    status = _run(local_runner, spec)

    assert status.state == "succeeded"
    seen = _seen(run_objects(spec)["log"])
    assert seen["ORCA_PIPELINE"] == evil
    assert (seen["EVIL"], seen["PLAIN"]) == (evil, "x")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_missing_python3_is_reported_in_the_log(
    make_spec: Callable[..., RunSpec],
    runner_env: dict[str, str],
    state_dir: Path,
    s3: Any,
    run_objects: Objects,
    tmp_path: Path,
) -> None:
    # A host with bash, coreutils and the aws CLI but no python3.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (
        "bash",
        "cat",
        "cut",
        "date",
        "grep",
        "ln",
        "ls",
        "mkdir",
        "mktemp",
        "mv",
        "rm",
        "seq",
        "setsid",
        "sha256sum",
        "sleep",
        "timeout",
        "tr",
        "wc",
    ):
        (bin_dir / tool).symlink_to(f"/usr/bin/{tool}")
    (bin_dir / "aws").symlink_to(Path(runner_env["PATH"].split(":")[0]) / "aws")
    runner = LocalRunner({**runner_env, "PATH": str(bin_dir)}, state_dir=state_dir, s3_client=s3)
    spec = make_spec("print('hi')\n", "etl.py")

    status = _run(runner, spec)

    assert (status.state, status.exit_code) == ("failed", 127)
    assert b"python3 is not installed" in run_objects(spec)["log"]


def test_bootstrap_that_cannot_reach_s3_fails_with_its_own_output(
    make_spec: Callable[..., RunSpec],
    runner_env: dict[str, str],
    state_dir: Path,
    s3: Any,
    refused_urls: None,
) -> None:
    # No aws CLI on PATH and every presigned URL refused: nothing can be downloaded and
    # no marker can be written.
    runner = LocalRunner({**runner_env, "PATH": "/usr/bin:/bin"}, state_dir=state_dir, s3_client=s3)
    spec = make_spec("echo hi\n", "job.sh")

    status = _run(runner, spec)

    assert status.state == "failed" and status.exit_code is None
    assert "the bootstrap process ended without an exit-code marker" in status.detail
    assert "could not download the script" in status.detail


def test_processes_left_behind_end_with_the_run(
    local_runner: LocalRunner, make_spec: Callable[..., RunSpec], tmp_path: Path
) -> None:
    pid_file = tmp_path / "daemon-pid"
    spec = make_spec(f"sleep 300 &\necho $! >{pid_file}\nexit 0\n", "job.sh")

    status = _run(local_runner, spec)

    assert status.state == "succeeded"
    daemon = int(pid_file.read_text())
    until(lambda: not _process_running(daemon), timeout=5)
