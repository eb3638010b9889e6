"""An AWS-RunShellScript command's life on an emulated instance, as an SSM user sees it
through boto3: registered after a moment, pending, running, then its real result."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.emulator.conftest import alive, final, invocation, pid_in, send, status, until
from tests.support.emulator import Emulator

pytestmark = pytest.mark.emulator

# Runs until the test creates the file `go` in the instance's directory.
GATE = "while [ ! -e go ]; do sleep 0.05; done"
ORDER = [None, "Pending", "InProgress", "Success"]


def test_a_command_runs_in_its_own_instance_directory_and_reports_its_output(
    emulator: Emulator, ssm: Any
) -> None:
    first, second = emulator.launch(2)
    command_id = send(ssm, [first, second], GATE, "pwd", 'echo "home=$HOME tmp=$TMPDIR"')
    assert invocation(ssm, command_id, first) is None  # InvocationDoesNotExist at first

    seen: list[str | None] = [None]

    def running() -> bool:
        now = status(ssm, command_id, first)
        if now != seen[-1]:
            seen.append(now)
        return now == "InProgress"

    until(running)
    assert seen == [s for s in ORDER if s in seen]  # never out of order, nothing else
    running_now = invocation(ssm, command_id, first)
    assert running_now is not None
    assert (running_now["ResponseCode"], running_now["StandardOutputContent"]) == (-1, "")

    (emulator.instance_dir(first) / "go").touch()
    done = final(ssm, command_id, first)
    assert status(ssm, command_id, second) == "InProgress"  # its own gate is still shut
    (emulator.instance_dir(second) / "go").touch()
    other = final(ssm, command_id, second)

    for answer, instance_id in ((done, first), (other, second)):
        where = emulator.instance_dir(instance_id)
        assert (answer["Status"], answer["StatusDetails"], answer["ResponseCode"]) == (
            "Success",
            "Success",
            0,
        )
        assert answer["StandardOutputContent"] == f"{where}\nhome={where}/home tmp={where}/tmp\n"
        assert answer["StandardErrorContent"] == ""
    assert emulator.instance_dir(first) != emulator.instance_dir(second)


def test_a_failing_script_fails_with_its_exit_code_and_stderr(emulator: Emulator, ssm: Any) -> None:
    [instance] = emulator.launch()
    command_id = send(ssm, [instance], "echo partial", "echo 'no such table' >&2", "exit 3")

    answer = final(ssm, command_id, instance)

    assert (answer["Status"], answer["StatusDetails"], answer["ResponseCode"]) == (
        "Failed",
        "Failed",
        3,
    )
    assert answer["StandardOutputContent"] == "partial\n"
    assert answer["StandardErrorContent"] == "no such table\n"


def _lines(count: int, start: int = 0) -> str:
    return "".join(f"{n:07d}\n" for n in range(start, start + count))


def test_output_is_truncated_as_ssm_truncates_it_and_whole_in_s3(
    emulator: Emulator, ssm: Any
) -> None:
    [instance] = emulator.launch()
    bucket = f"outputs-{uuid.uuid4().hex[:8]}"
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=bucket)
    # 100 KB on stdout, 20 KB on stderr, every line different.
    stdout, stderr = _lines(12_800), _lines(2_560, start=500_000)
    command_id = send(
        ssm,
        [instance],
        "seq -f %07g 0 12799",
        "seq -f %07g 500000 502559 >&2",
        OutputS3BucketName=bucket,
        OutputS3KeyPrefix="runs/42",
    )

    answer = final(ssm, command_id, instance)

    assert answer["Status"] == "Success"
    assert answer["StandardOutputContent"] == stdout[:24_000]
    assert answer["StandardErrorContent"] == stderr[:8_000]
    prefix = f"runs/42/{command_id}/{instance}/awsrunShellScript/0.awsrunShellScript"
    whole_out = s3.get_object(Bucket=bucket, Key=f"{prefix}/stdout")["Body"].read()
    whole_err = s3.get_object(Bucket=bucket, Key=f"{prefix}/stderr")["Body"].read()
    assert (whole_out.decode(), whole_err.decode()) == (stdout, stderr)
    assert answer["StandardOutputUrl"].endswith(f"/{bucket}/{prefix}/stdout")
    assert answer["StandardErrorUrl"].endswith(f"/{bucket}/{prefix}/stderr")


def test_execution_timeout_kills_the_command(emulator: Emulator, ssm: Any) -> None:
    [instance] = emulator.launch()
    command_id = send(
        ssm,
        [instance],
        "bash -c 'echo $$ > sleep.pid; exec sleep 30'",
        "echo after the sleep",
        parameters={"executionTimeout": ["2"]},
    )
    sleeper = pid_in(emulator.instance_dir(instance) / "sleep.pid")

    answer = final(ssm, command_id, instance, timeout=10)

    assert (answer["Status"], answer["StatusDetails"]) == ("TimedOut", "ExecutionTimedOut")
    assert "after the sleep" not in answer["StandardOutputContent"]
    assert not alive(sleeper)


def test_other_documents_keep_motos_behaviour_and_run_nothing(emulator: Emulator, ssm: Any) -> None:
    [instance] = emulator.launch()
    marker = emulator.instance_dir(instance) / "ran"
    answer = ssm.send_command(
        InstanceIds=[instance],
        DocumentName="AWS-RunPowerShellScript",
        Parameters={"commands": [f"touch {marker}"]},
    )
    command_id = answer["Command"]["CommandId"]

    recorded = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)

    assert recorded["Status"] == "Success"  # moto's recorded answer, straight away
    assert recorded["DocumentName"] == "AWS-RunPowerShellScript"
    assert not marker.exists()
    assert not (emulator.instance_dir(instance) / "commands" / command_id).exists()
