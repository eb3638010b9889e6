"""Attempt-scoped S3 layout (issue 10, point 12): every attempt has its own log, exit
marker and outputs under ``runs/<run id>/attempts/<n>/``; the run's views point at the
attempt that counted (its last)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orca_flows.db.models import CloudLink, Pipeline, Run
from orca_flows.domain.s3_layout import exit_code_key, run_prefix, s3_uri, split_s3_uri
from orca_flows.errors import InvalidInputError
from orca_flows.runners import LocalRunner, RunSpec
from orca_flows.services.run_outputs import output_name
from orca_flows.services.run_views import log_uri
from orca_flows.services.runs import _Files

pytestmark = pytest.mark.sandbox

Objects = Callable[[RunSpec], dict[str, bytes]]
RUN_ID = "5f0c7a3e-1d2b-4c5a-9e8f-0a1b2c3d4e5f"
# Fails on its first attempt, succeeds on the next; each attempt leaves an output.
FLAKY = """
n=$(cat "$TRIES_FILE" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" >"$TRIES_FILE"
echo "attempt $n here"
echo "from attempt $n" >"$ORCA_OUTPUT_DIR/attempt-$n.txt"
[ "$n" -ge 2 ] || exit 3
"""


def _run(runner: LocalRunner, spec: RunSpec) -> str:
    status = runner.wait(runner.start(spec), spec, timeout=60)
    assert status.finished, status
    return str(status.state)


def test_a_retry_keeps_the_failed_attempt_s_log_marker_and_outputs(
    local_runner: LocalRunner,
    make_spec: Callable[..., RunSpec],
    run_objects: Objects,
    tmp_path: Path,
) -> None:
    first = make_spec(FLAKY, "job.sh", environment={"TRIES_FILE": str(tmp_path / "tries")})
    second = dataclasses.replace(first, attempt=2)

    assert _run(local_runner, first) == "failed"
    assert _run(local_runner, second) == "succeeded"

    one, two = run_objects(first), run_objects(second)
    assert set(one) == {"log", "exit-code", "outputs/attempt-1.txt"}
    assert set(two) == {"log", "exit-code", "outputs/attempt-2.txt"}
    assert b"attempt 1 here" in one["log"] and b"attempt 2" not in one["log"]
    assert b"attempt 2 here" in two["log"]
    assert json.loads(one["exit-code"])["exit_code"] == 3
    assert json.loads(two["exit-code"])["exit_code"] == 0
    assert first.attempt_uri.endswith("/attempts/1/") and second.attempt_uri.endswith(
        "/attempts/2/"
    )


def test_a_late_marker_of_attempt_1_never_finishes_attempt_2(
    local_runner: LocalRunner, make_spec: Callable[..., RunSpec], s3: Any, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    spec = make_spec(f"touch {started}\nsleep 3\n", "job.sh", attempt=2)
    earlier = dataclasses.replace(spec, attempt=1)
    execution = local_runner.start(spec)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.1)

    # Attempt 1's bootstrap, on a host SSM had lost touch with, reports at last.
    bucket, earlier_prefix = split_s3_uri(earlier.attempt_uri)
    late = {"exit_code": 1, "timed_out": False, "sha256_ok": True, "cancelled": False}
    s3.put_object(Bucket=bucket, Key=exit_code_key(earlier_prefix), Body=json.dumps(late))

    assert local_runner.finished(spec) is None
    assert local_runner.status(execution, spec).state == "running"
    assert local_runner.wait(execution, spec, timeout=60).state == "succeeded"


def _run_row(attempt: int) -> Run:
    link = CloudLink(name="sandbox", bucket="orca-bucket", region="us-east-1")
    return Run(
        id=RUN_ID,
        attempt=attempt,
        s3_prefix=run_prefix(7, "etl", RUN_ID),
        pipeline=Pipeline(name="etl", link=link),
    )


@pytest.mark.parametrize(("attempt", "folder"), [(0, 1), (1, 1), (3, 3)])
def test_the_run_s_views_point_at_the_attempt_that_counted(attempt: int, folder: int) -> None:
    run = _run_row(attempt)
    attempt_folder = f"orca/7/etl/runs/{RUN_ID}/attempts/{folder}/"

    assert log_uri(run, "orca-bucket") == s3_uri("orca-bucket", attempt_folder + "log")
    assert _Files.of(run).prefix == attempt_folder
    output = s3_uri("orca-bucket", attempt_folder + "outputs/report.csv")
    assert output_name(run, output) == "report.csv"


def test_an_earlier_attempt_s_output_is_not_the_run_s() -> None:
    run = _run_row(2)
    earlier = s3_uri("orca-bucket", f"orca/7/etl/runs/{RUN_ID}/attempts/1/outputs/report.csv")

    with pytest.raises(InvalidInputError, match="is not an output of run"):
        output_name(run, earlier)
