"""The SSM runner end to end on the sandbox's emulator: real HTTP, emulated EC2 instances
whose SSM agent runs the real bootstrap, which runs the script and reports to S3.

The runner is built as ``orca_flows.runners.factory.runner_for`` builds it (the account's
SSM and S3 clients, the link's bucket and the pipeline's SSM output prefix). What the
emulator cannot produce on demand is in ``test_ssm_runner_stubbed``.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from orca_flows.domain.limits import BOOTSTRAP_MARGIN_SECONDS
from orca_flows.domain.rules import parse_targets
from orca_flows.domain.s3_layout import ssm_output_prefix
from orca_flows.domain.states import ExecutionState
from orca_flows.runners import (
    Backoff,
    Execution,
    ExecutionStatus,
    NoInstanceAvailableError,
    RunSpec,
    SsmRunner,
    render_bootstrap,
)
from tests.runners.conftest import UserAccount, until

pytestmark = pytest.mark.emulator

DOCUMENT = "AWS-RunShellScript"
# Polling speed is not behaviour: the tests poll faster than the worker's default.
FAST = Backoff(first=0.2, cap=1.0)


def _runner(account: UserAccount, target: str, *, ssm: Any = None, **options: Any) -> SsmRunner:
    """The runner of pipeline ``demo`` of user 7 targeting ``target`` (as stored)."""
    return SsmRunner(
        ssm or account.ssm,
        targets=parse_targets(target, field="targets"),
        output_bucket=account.bucket,
        output_key_prefix=ssm_output_prefix(7, "demo"),
        s3_client=account.s3,
        backoff=FAST,
        **options,
    )


def _run(runner: SsmRunner, spec: RunSpec, timeout: float = 90) -> tuple[Execution, Any]:
    execution = runner.start(spec)
    status = runner.wait(execution, spec, timeout=timeout)
    assert status.finished, status
    return execution, status


def _commands_for(account: UserAccount, spec: RunSpec) -> list[dict[str, Any]]:
    """The commands SSM holds for ``spec``'s attempt (its Comment)."""
    pages = account.ssm.get_paginator("list_commands").paginate(
        Filters=[{"key": "DocumentName", "value": DOCUMENT}]
    )
    return [
        command
        for page in pages
        for command in page["Commands"]
        if command.get("Comment") == spec.execution_key
    ]


def _invoked_on(account: UserAccount, command_id: str) -> list[str]:
    """The instances SSM sent ``command_id`` to."""
    response = account.ssm.list_command_invocations(CommandId=command_id)
    return [invocation["InstanceId"] for invocation in response["CommandInvocations"]]


def _ran_on(account: UserAccount, instance_ids: list[str], command_id: str) -> list[str]:
    """The instances whose agent ran ``command_id`` (the command's folder on their disk)."""
    return [
        instance
        for instance in instance_ids
        if (account.emulator.instance_dir(instance) / "commands" / command_id).is_dir()
    ]


def _invocation(account: UserAccount, execution: Execution) -> dict[str, Any]:
    return account.ssm.get_command_invocation(
        CommandId=execution.command_id, InstanceId=execution.instance_id
    )


def _process_running(pid: int) -> bool:
    # A zombie has died already; only its parent has not collected it yet.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


PYTHON_SCRIPT = """
import json, os
print("starting", flush=True)
print("SEEN " + json.dumps({k: os.environ.get(k) for k in ("ORCA_RUN_ID", "TMPDIR", "HOME")}))
with open(os.path.join(os.environ["ORCA_OUTPUT_DIR"], "result.csv"), "w") as f:
    f.write("a,b\\n1,2\\n")
print("done")
"""


_URL_LINES = {"script_get_url", "log_put_url", "marker_put_url"}


def _without_urls(bootstrap: str) -> list[str]:
    return [line for line in bootstrap.splitlines() if line.split("=", 1)[0] not in _URL_LINES]


def test_start_sends_the_bootstrap_and_the_script_runs_on_the_instance(
    account: UserAccount,
) -> None:
    [instance] = account.launch()
    spec = account.make_spec(PYTHON_SCRIPT)

    execution, status = _run(_runner(account, instance), spec)

    assert (status.state, status.exit_code) == ("succeeded", 0)
    assert execution.instance_id == instance
    objects = account.objects(spec)
    assert set(objects) == {"log", "exit-code", "outputs/result.csv"}
    assert objects["outputs/result.csv"] == b"a,b\n1,2\n"
    assert b"starting" in objects["log"] and b"done" in objects["log"]
    marker = json.loads(objects["exit-code"])
    assert (marker["exit_code"], marker["timed_out"], marker["cancelled"]) == (0, False, False)
    # It ran on that instance: with its TMPDIR and HOME, in its agent's folder.
    seen = json.loads(objects["log"].decode().split("SEEN ", 1)[1].splitlines()[0])
    instance_dir = str(account.emulator.instance_dir(instance))
    assert seen["ORCA_RUN_ID"] == spec.run_id
    assert seen["TMPDIR"].startswith(instance_dir) and seen["HOME"].startswith(instance_dir)
    assert _ran_on(account, [instance], execution.command_id) == [instance]
    # What was sent: the bootstrap, with the script's timeout plus the bootstrap's margin.
    [command] = _commands_for(account, spec)
    assert command["CommandId"] == execution.command_id
    assert command["InstanceIds"] == [instance]
    sent = "\n".join(command["Parameters"]["commands"]) + "\n"
    # The bootstrap, with the attempt's presigned URLs (signed at the send) in its head.
    urls = [line for line in sent.splitlines() if line.split("=", 1)[0] in _URL_LINES]
    assert len(urls) == 3 and all("://" in line for line in urls), urls
    assert _without_urls(sent) == _without_urls(render_bootstrap(spec))
    assert command["Parameters"]["executionTimeout"] == [str(60 + BOOTSTRAP_MARGIN_SECONDS)]
    assert (command["OutputS3BucketName"], command["OutputS3KeyPrefix"]) == (
        account.bucket,
        ssm_output_prefix(7, "demo"),
    )
    invocation = _invocation(account, execution)
    assert (invocation["Status"], invocation["ResponseCode"]) == ("Success", 0)


def test_a_failing_script_fails_with_its_exit_code(account: UserAccount) -> None:
    [instance] = account.launch()
    spec = account.make_spec("echo broken >&2\nexit 3\n", "job.sh")

    execution, status = _run(_runner(account, instance), spec)

    assert status == ExecutionStatus(ExecutionState.FAILED, 3, "the script exited with 3")
    assert b"broken" in account.objects(spec)["log"]
    invocation = _invocation(account, execution)
    assert (invocation["Status"], invocation["ResponseCode"]) == ("Failed", 3)


def test_a_script_past_its_timeout_is_timed_out_the_marker_outranking_ssm(
    account: UserAccount,
) -> None:
    [instance] = account.launch()
    spec = account.make_spec("echo sleeping\nsleep 60\n", "slow.sh", timeout_seconds=2)

    execution, status = _run(_runner(account, instance), spec)

    assert (status.state, status.exit_code) == ("timed_out", 124)
    assert json.loads(account.objects(spec)["exit-code"])["timed_out"] is True
    # SSM only saw the bootstrap exit 124: "Failed". The marker says what happened.
    invocation = _invocation(account, execution)
    assert (invocation["Status"], invocation["ResponseCode"]) == ("Failed", 124)


@pytest.mark.parametrize("by", ["tag", "instance-ids"])
def test_several_candidates_run_each_attempt_on_exactly_one_online_instance(
    by: str, request: pytest.FixtureRequest
) -> None:
    # A tag target takes every instance of the account: that test has an emulator of its own.
    fleet: UserAccount = request.getfixturevalue("own_account" if by == "tag" else "account")
    instances = fleet.launch(2)
    runner = _runner(fleet, "tag:orca=enabled" if by == "tag" else ",".join(instances))
    spec = fleet.make_spec("echo hello\n", "job.sh")

    first, status = _run(runner, spec)

    assert status.state == "succeeded"
    assert first.instance_id in instances
    assert _invoked_on(fleet, first.command_id) == [first.instance_id]
    assert _ran_on(fleet, instances, first.command_id) == [first.instance_id]

    # That instance goes offline: the run's next attempt (whose run id would pick it
    # again) and new runs all go to the one still online.
    fleet.emulator.stop_agent(first.instance_id)
    [online] = [instance for instance in instances if instance != first.instance_id]
    specs = [dataclasses.replace(spec, attempt=2)] + [
        fleet.make_spec("echo hello\n", "job.sh") for _ in range(3)
    ]
    executions = [runner.start(each) for each in specs]
    assert [execution.instance_id for execution in executions] == [online] * len(specs)
    for each, execution in zip(specs, executions, strict=True):
        assert runner.wait(execution, each, timeout=90).state == "succeeded"
        assert _invoked_on(fleet, execution.command_id) == [online]
        assert _ran_on(fleet, instances, execution.command_id) == [online]


def test_no_online_instance_sends_nothing(own_account: UserAccount) -> None:
    instances = own_account.launch(2)
    for instance in instances:
        own_account.emulator.stop_agent(instance)
    spec = own_account.make_spec("echo never\n", "job.sh")

    for target in ("tag:orca=enabled", ",".join(instances)):
        with pytest.raises(NoInstanceAvailableError, match="is online"):
            _runner(own_account, target).start(spec)

    assert own_account.ssm.list_commands()["Commands"] == []


def test_start_resumes_the_command_already_sent_for_the_attempt(account: UserAccount) -> None:
    [instance] = account.launch()
    spec = account.make_spec("echo ran-once\n", "job.sh")

    first = _runner(account, instance).start(spec)
    # A worker that died after sending: its successor builds a runner of its own.
    successor = _runner(account, instance)
    again = successor.start(spec)

    assert again == first
    assert [command["CommandId"] for command in _commands_for(account, spec)] == [first.command_id]
    assert successor.wait(again, spec, timeout=90).state == "succeeded"
    assert account.objects(spec)["log"].count(b"ran-once") == 1


def test_status_goes_pending_running_succeeded(account: UserAccount, tmp_path: Path) -> None:
    [instance] = account.launch()
    gate = tmp_path / "gate"
    spec = account.make_spec(
        'while [ ! -e "$GATE" ]; do sleep 0.1; done\necho released\n',
        "gated.sh",
        environment={"GATE": str(gate)},
    )
    # A client of its own, recording each GetCommandInvocation answer the runner reads.
    ssm = account.emulator.client("ssm")
    answers: list[str] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        answers.append(parsed.get("Error", {}).get("Code") or parsed["Status"])

    ssm.meta.events.register("after-call.ssm.GetCommandInvocation", record)
    runner = _runner(account, instance, ssm=ssm)
    account.emulator.stop_agent(instance)  # so the command waits, undelivered, for a while
    execution = runner.start(spec)
    seen = [(runner.status(execution, spec).state, answers[-1])]

    def observe(until_answer: str) -> bool:
        seen.append((runner.status(execution, spec).state, answers[-1]))
        return answers[-1] == until_answer

    until(lambda: observe("Pending"))
    account.emulator.start_agent(instance)
    until(lambda: observe("InProgress"), timeout=30)
    gate.touch()
    until(lambda: observe("Success"), timeout=30)

    # SSM's answers and the runner's reading of each, in order, repeats folded.
    folded = [pair for n, pair in enumerate(seen) if n == 0 or pair != seen[n - 1]]
    assert folded == [
        ("pending", "InvocationDoesNotExist"),
        ("pending", "Pending"),
        ("running", "InProgress"),
        ("succeeded", "Success"),
    ]
    assert runner.status(execution, spec) == ExecutionStatus(ExecutionState.SUCCEEDED, 0)


def test_a_command_sent_by_tag_finds_its_instance(account: UserAccount) -> None:
    name = f"by-hand-{uuid.uuid4()}"
    [instance] = account.launch(Name=name)
    spec = account.make_spec("echo by-hand\n", "job.sh")
    # Sent by hand with Targets: SSM's command names no instance, its invocation does.
    sent = account.ssm.send_command(
        Targets=[{"Key": "tag:Name", "Values": [name]}],
        DocumentName=DOCUMENT,
        Comment=spec.execution_key,
        Parameters={"commands": render_bootstrap(spec).rstrip("\n").split("\n")},
    )["Command"]
    runner = _runner(account, f"tag:Name={name}")

    found = runner.find(spec.execution_key)

    assert found == Execution(sent["CommandId"], None)
    assert runner.wait(found, spec, timeout=90) == ExecutionStatus(ExecutionState.SUCCEEDED, 0)
    assert _invoked_on(account, sent["CommandId"]) == [instance]
    assert b"by-hand" in account.objects(spec)["log"]


def _both_pids(path: Path) -> list[int] | None:
    pids = [int(pid) for pid in path.read_text().split()] if path.exists() else []
    return pids if len(pids) == 2 else None


STOPPABLE = """echo "$$" >>"$PIDS"
sleep 300 &
echo "$!" >>"$PIDS"
echo started
wait
"""


def test_stop_kills_the_script_and_its_children_and_keeps_the_final_log(
    account: UserAccount, tmp_path: Path
) -> None:
    [instance] = account.launch()
    pids_file = tmp_path / "pids"
    spec = account.make_spec(STOPPABLE, "stoppable.sh", environment={"PIDS": str(pids_file)})
    runner = _runner(account, instance)
    execution = runner.start(spec)
    pids = until(lambda: _both_pids(pids_file), timeout=30)
    assert all(_process_running(pid) for pid in pids)

    runner.stop(execution, spec)

    # The stop returns once the kill command has run: the script and its child are gone.
    assert not [pid for pid in pids if _process_running(pid)]
    assert runner.wait(execution, spec, timeout=30).state == "cancelled"
    # The bootstrap outlived its script: it wrote the final log and a marker saying so
    # (SSM's CancelCommand on the running command would have killed it first).
    objects = account.objects(spec)
    assert json.loads(objects["exit-code"])["cancelled"] is True
    assert b"was stopped" in objects["log"]
    # The kill went to the instance that runs the script (its host dir, $TMPDIR/orca).
    kills = [
        command
        for command in account.ssm.list_commands()["Commands"]
        if command["Comment"] == f"orca stop {spec.run_id}"
    ]
    assert [kill["InstanceIds"] for kill in kills] == [[instance]]


def test_output_past_ssms_limit_is_whole_in_the_s3_log(account: UserAccount) -> None:
    [instance] = account.launch()
    spec = account.make_spec(
        'import sys\nsys.stdout.write(("x" * 99 + "\\n") * 1024)\nprint("END")\n', "loud.py"
    )

    execution, status = _run(_runner(account, instance), spec)

    assert (status.state, status.exit_code) == ("succeeded", 0)
    log = account.objects(spec)["log"]
    assert log.count(b"x" * 99 + b"\n") == 1024 and b"END" in log  # all 100 KB
    # SSM's own answer carries the log's first 24,000 characters: Orca reads it from S3.
    assert _invocation(account, execution)["StandardOutputContent"] == log.decode()[:24_000]


def test_an_undelivered_command_fails_the_run_saying_why(account: UserAccount) -> None:
    # One 30 s test: SSM's shortest delivery timeout, on an instance whose agent is off.
    [instance] = account.launch()
    account.emulator.stop_agent(instance)
    spec = account.make_spec("echo never\n", "job.sh")
    runner = _runner(account, instance, delivery_timeout_seconds=30)

    execution, status = _run(runner, spec, timeout=120)

    assert (status.state, status.exit_code) == ("failed", None)
    assert instance in status.detail and "never ran" in status.detail
    assert "SSM agent is online" in status.detail
    invocation = _invocation(account, execution)
    assert (invocation["Status"], invocation["StatusDetails"]) == ("TimedOut", "DeliveryTimedOut")
    assert _ran_on(account, [instance], execution.command_id) == []
    assert account.objects(spec) == {}


def test_stopping_a_command_an_offline_agent_never_received_cancels_it_for_good(
    account: UserAccount,
) -> None:
    [instance] = account.launch()
    account.emulator.stop_agent(instance)
    spec = account.make_spec("echo ran\n", "job.sh")
    runner = _runner(account, instance)
    execution = runner.start(spec)

    # No kill to wait for: SSM cancels what it has not delivered, so the stop is over.
    runner.stop(execution, spec)

    assert _invocation(account, execution)["Status"] == "Cancelled"
    account.emulator.start_agent(instance)
    time.sleep(1)  # the agent, back, would have taken the command by now
    assert _ran_on(account, [instance], execution.command_id) == []
    assert account.objects(spec) == {}
    stops = [
        command
        for command in account.ssm.list_commands()["Commands"]
        if command["Comment"] == f"orca stop {spec.run_id}"
    ]
    assert stops == []
