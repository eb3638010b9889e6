"""The SSM runner: the bootstrap sent to one EC2 instance with SSM Run Command."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import WaiterError

from orca_flows.domain.limits import execution_timeout_seconds
from orca_flows.domain.rules import check_targets
from orca_flows.domain.states import ExecutionState
from orca_flows.errors import AwsError, NoInstanceAvailableError
from orca_flows.logs import get_logger
from orca_flows.runners.base import Backoff, wait_for_execution
from orca_flows.runners.bootstrap import render_bootstrap, render_kill
from orca_flows.runners.spec import (
    Execution,
    ExecutionStatus,
    RunSpec,
    read_marker,
)
from orca_flows.runners.transfers import presign_transfers

__all__ = ["NoInstanceAvailableError", "SsmRunner"]

logger = get_logger(__name__)

DOCUMENT = "AWS-RunShellScript"
_KILL_EXECUTION_TIMEOUT = 60
_KILL_DELIVERY_TIMEOUT = 60
# How long a stop waits for SSM to confirm the cancel of a command not delivered yet.
_CANCEL_SETTLE_SECONDS = 10.0
_UNDELIVERED = frozenset({"Pending", "Delayed"})
# Polls (1 s apart) for the kill command to end: its own timeout plus delivery slack.
_KILL_WAIT_ATTEMPTS = _KILL_EXECUTION_TIMEOUT + 30
_STATES: dict[str, tuple[ExecutionState, str]] = {
    "Pending": (ExecutionState.PENDING, ""),
    "Delayed": (ExecutionState.PENDING, "SSM could not reach the instance yet and keeps trying"),
    "InProgress": (ExecutionState.RUNNING, ""),
    "Success": (ExecutionState.SUCCEEDED, ""),
    "Failed": (ExecutionState.FAILED, ""),
    "TimedOut": (ExecutionState.TIMED_OUT, ""),
    # A cancel in flight: the agent may not have killed anything yet, so not over.
    "Cancelling": (ExecutionState.RUNNING, "SSM is cancelling the command"),
    "Cancelled": (ExecutionState.CANCELLED, ""),
}
# Endings in which the script never ran on its instance, as SSM's StatusDetails (Status
# is "TimedOut" for a delivery timeout, "Failed" or the same word for the others), spelt
# "DeliveryTimedOut" in its answers and "Delivery Timed Out" in its docs, so compared
# without spaces or case. None is the script timing out or failing: the run fails with
# what kept the command from the instance (cause, then fix; "{instance}" is filled in).
_AGENT_FIX = (
    "check that the instance is running and its SSM agent is online (`aws ssm "
    "describe-instance-information --filters Key=InstanceIds,Values={instance}`), then "
    "retry the run"
)
_NEVER_RAN: dict[str, tuple[str, str]] = {
    "deliverytimedout": (
        "SSM could not deliver the command to {instance} within its delivery timeout: "
        "the instance's SSM agent was offline or not reachable",
        _AGENT_FIX,
    ),
    "undeliverable": (
        "SSM could not deliver the command to {instance}: the instance may not exist any "
        "more or does not respond",
        _AGENT_FIX,
    ),
    "terminated": (
        "SSM stopped sending the command before it reached {instance} (its error limit "
        "was reached)",
        "retry the run",
    ),
    "invalidplatform": (
        "{instance} cannot run AWS-RunShellScript (it is not a Linux instance)",
        "target Linux instances only",
    ),
    "accessdenied": (
        "SSM was denied running the command on {instance}",
        "check the link role's ssm:SendCommand permission for that instance (its tags), "
        "then retry the run",
    ),
}


def _never_started(invocation: dict[str, Any]) -> bool:
    """Whether SSM says the command is over without having started it (nothing to kill)."""
    if invocation.get("ExecutionStartDateTime"):
        return False
    return invocation["Status"] in ("Cancelled", "TimedOut", "Failed", "Undeliverable")


def _lines(script: str) -> list[str]:
    # SSM joins "commands" with newlines; splitting on "\n" only (not splitlines) keeps
    # every other character of a quoted value intact.
    return script.rstrip("\n").split("\n")


class SsmRunner:
    """Sends the bootstrap to exactly one instance and watches it through SSM and S3.

    A run must execute once, and SSM runs a command on every instance it targets, so a
    tag selector (or several instance ids) is resolved first: among the matching
    instances that SSM reports online, one is chosen by hashing the run id (stable for a
    run, spread across runs) and the command goes to that instance id alone.

    Args:
        ssm_client: SSM client of the linked account.
        targets: Instance ids, or one ``tag:KEY=VALUE``.
        output_bucket: Bucket for SSM's own copy of the bootstrap's stdout/stderr.
        output_key_prefix: Key prefix for that copy (SSM appends command and instance id).
        s3_client: S3 client reading the run's exit-code marker (the full truth; SSM's
            GetCommandInvocation truncates output at 24,000 characters).
        delivery_timeout_seconds: How long SSM keeps trying to reach the instance.
        find_lookback: How far back ``find`` looks for a run's command.
        backoff: Delays between polls in ``wait``.
        now: Injected clock (tests).
    """

    def __init__(
        self,
        ssm_client: Any,
        *,
        targets: list[str],
        output_bucket: str,
        output_key_prefix: str,
        s3_client: Any = None,
        delivery_timeout_seconds: int = 600,
        find_lookback: timedelta = timedelta(days=3),
        backoff: Backoff = Backoff(first=1.0, cap=15.0),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ssm_client = ssm_client
        self.targets = check_targets(targets, field="targets")
        self.output_bucket = output_bucket
        self.output_key_prefix = output_key_prefix
        self.s3_client = s3_client
        self.delivery_timeout_seconds = delivery_timeout_seconds
        self.find_lookback = find_lookback
        self.backoff = backoff
        self._now = now

    def start(self, spec: RunSpec) -> Execution:
        """Send the bootstrap for ``spec``'s attempt, unless a command for it exists already.

        SendCommand has no idempotency token: the attempt's ``execution_key`` is the
        command's Comment, so a worker killed after sending but before recording the
        command id is followed by one that finds the command instead of sending another.
        Should a second copy reach the instance all the same (SSM's list not up to date
        yet), the bootstrap's claim on the host keeps it from running the script.

        SSM's executionTimeout covers the script's timeout and the bootstrap's margin for
        fetching the script and uploading the log, outputs and marker
        (``orca_flows.domain.limits``), so uploads never turn a success into a timeout.

        Raises:
            NoInstanceAvailableError: No target instance is online.
        """
        if existing := self.find(spec.execution_key):
            logger.info("run %s resumes SSM command %s", spec.run_id, existing.command_id)
            return existing
        instance_id = self._choose_instance(spec.run_id)
        execution_timeout = execution_timeout_seconds(spec.timeout_seconds)
        command = self._send(
            instance_id,
            comment=spec.execution_key,
            commands=_lines(
                render_bootstrap(spec, transfers=presign_transfers(self.s3_client, spec))
            ),
            execution_timeout=execution_timeout,
        )
        logger.info(
            "run %s sent as SSM command %s to %s", spec.run_id, command["CommandId"], instance_id
        )
        return Execution(command["CommandId"], instance_id)

    def find(self, execution_key: str) -> Execution | None:
        """The command sent for ``execution_key`` (its Comment) within ``find_lookback``.

        ListCommands cannot filter on the Comment: every page of the recent
        AWS-RunShellScript commands is read and matched here.
        """
        since = (self._now() - self.find_lookback).strftime("%Y-%m-%dT%H:%M:%SZ")
        paginator = self.ssm_client.get_paginator("list_commands")
        pages = paginator.paginate(
            Filters=[
                {"key": "DocumentName", "value": DOCUMENT},
                {"key": "InvokedAfter", "value": since},
            ]
        )
        found = [
            command
            for page in pages
            for command in page.get("Commands", [])
            if command.get("Comment") == execution_key
        ]
        if not found:
            return None
        if len(found) > 1:
            logger.warning(
                "attempt %s has %d SSM commands: %s; following the first",
                execution_key,
                len(found),
                [command["CommandId"] for command in found],
            )
        first = min(found, key=lambda command: command["RequestedDateTime"])
        instance_ids = first.get("InstanceIds") or []
        return Execution(first["CommandId"], instance_ids[0] if len(instance_ids) == 1 else None)

    def finished(self, spec: RunSpec) -> ExecutionStatus | None:
        """The attempt's final status from its exit-code marker in S3; ``None`` until then
        (or with no S3 client)."""
        return None if self.s3_client is None else read_marker(self.s3_client, spec)

    def status(self, execution: Execution, spec: RunSpec) -> ExecutionStatus:
        """SSM's view while the command runs; the S3 marker's once it is over.

        ``InvocationDoesNotExist`` (SSM's answer just after SendCommand) means pending. A
        command SSM never delivered (its agent offline past the delivery timeout, say) is
        ``failed`` with the instance, the cause and the fix: the script never ran.
        """
        instance_id = execution.instance_id or self._invoked_instance(execution.command_id)
        ssm_status = None
        if instance_id is not None:
            try:
                invocation = self.ssm_client.get_command_invocation(
                    CommandId=execution.command_id, InstanceId=instance_id
                )
            except self.ssm_client.exceptions.InvocationDoesNotExist:
                pass
            else:
                ssm_status = self._from_invocation(invocation, instance_id)
        # The marker is read only when SSM says "over" (or cannot say): one call per poll.
        if (ssm_status is None or ssm_status.finished) and self.s3_client is not None:
            if (final := read_marker(self.s3_client, spec)) is not None:
                return final
        return ssm_status or ExecutionStatus(ExecutionState.PENDING)

    def stop(self, execution: Execution, spec: RunSpec) -> None:
        """Kill the script's process group with a second command; cancel the first one only
        while SSM has not delivered it.

        The kill command marks the run stopped on the host and kills the script (its own
        session, which SSM's cancel would not reach); the bootstrap then uploads the final
        log and a marker saying ``cancelled``. Cancelling a command already running would
        kill the bootstrap itself and lose both, so CancelCommand is kept for a command
        not delivered yet: that one must never start later, and once SSM says it ended
        without starting (an offline agent's command included) there is nothing to kill.
        """
        command_id = execution.command_id
        instance_id = execution.instance_id or self._invoked_instance(command_id)
        if instance_id is None:
            self.ssm_client.cancel_command(CommandId=command_id)
            logger.info("run %s: SSM command %s reached no instance", spec.run_id, command_id)
            return
        invocation = self._invocation(command_id, instance_id)
        if invocation is None or invocation["Status"] in _UNDELIVERED:
            self.ssm_client.cancel_command(CommandId=command_id)
            invocation = self._settled(command_id, instance_id)
        if invocation is not None and _never_started(invocation):
            logger.info(
                "run %s: SSM command %s ended %s before it started on %s",
                spec.run_id,
                command_id,
                invocation["Status"],
                instance_id,
            )
            return
        kill = self._send(
            instance_id,
            comment=f"orca stop {spec.run_id}",
            commands=_lines(render_kill(spec.run_id)),
            execution_timeout=_KILL_EXECUTION_TIMEOUT,
            # A kill delivered long after Orca gave up could hit a later attempt's script.
            delivery_timeout=_KILL_DELIVERY_TIMEOUT,
        )
        logger.info(
            "run %s: stopping SSM command %s with kill command %s on %s",
            spec.run_id,
            execution.command_id,
            kill["CommandId"],
            instance_id,
        )
        # The stop counts only once the kill has run: the command's own status says
        # nothing about the script's process group (its own session).
        waiter = self.ssm_client.get_waiter("command_executed")
        try:
            waiter.wait(
                CommandId=kill["CommandId"],
                InstanceId=instance_id,
                WaiterConfig={"Delay": 1, "MaxAttempts": _KILL_WAIT_ATTEMPTS},
            )
        except WaiterError as error:
            raise AwsError(
                "ssm:SendCommand",
                None,
                f"the kill command {kill['CommandId']} for run {spec.run_id} on {instance_id} "
                f"did not succeed ({error.last_response.get('Status', error)}); check that "
                "the instance's SSM agent is online, then stop the run again.",
            ) from error

    def wait(
        self, execution: Execution, spec: RunSpec, *, timeout: float | None = None
    ) -> ExecutionStatus:
        """Poll ``status`` until the execution is finished (see ``wait_for_execution``)."""
        return wait_for_execution(self, execution, spec, timeout=timeout)

    def _send(
        self,
        instance_id: str,
        *,
        comment: str,
        commands: list[str],
        execution_timeout: int,
        delivery_timeout: int | None = None,
    ) -> dict[str, Any]:
        response = self.ssm_client.send_command(
            InstanceIds=[instance_id],
            DocumentName=DOCUMENT,
            Comment=comment,
            Parameters={"commands": commands, "executionTimeout": [str(execution_timeout)]},
            TimeoutSeconds=delivery_timeout or self.delivery_timeout_seconds,
            OutputS3BucketName=self.output_bucket,
            OutputS3KeyPrefix=self.output_key_prefix,
            # One instance already; these keep it so should a target ever match more.
            MaxConcurrency="1",
            MaxErrors="0",
        )
        return response["Command"]

    def _choose_instance(self, run_id: str) -> str:
        if len(self.targets) == 1 and not self.targets[0].startswith("tag:"):
            return self.targets[0]  # SSM itself waits (Delayed) while that one is offline.
        if self.targets[0].startswith("tag:"):
            key, value = self.targets[0].removeprefix("tag:").split("=", 1)
            selector = {"Key": f"tag:{key}", "Values": [value]}
        else:
            selector = {"Key": "InstanceIds", "Values": self.targets}
        paginator = self.ssm_client.get_paginator("describe_instance_information")
        pages = paginator.paginate(Filters=[selector, {"Key": "PingStatus", "Values": ["Online"]}])
        online = sorted(
            info["InstanceId"]
            for page in pages
            for info in page.get("InstanceInformationList", [])
            if info.get("PingStatus") == "Online"
        )
        if not online:
            raise NoInstanceAvailableError(self.targets)
        digest = int(hashlib.sha256(run_id.encode()).hexdigest(), 16)
        return online[digest % len(online)]

    def _invocation(self, command_id: str, instance_id: str) -> dict[str, Any] | None:
        """The command's invocation on the instance; ``None`` while SSM has none yet."""
        try:
            return self.ssm_client.get_command_invocation(
                CommandId=command_id, InstanceId=instance_id
            )
        except self.ssm_client.exceptions.InvocationDoesNotExist:
            return None

    def _settled(self, command_id: str, instance_id: str) -> dict[str, Any] | None:
        """The invocation once a cancel has taken effect (or the agent took it first)."""
        deadline = time.monotonic() + _CANCEL_SETTLE_SECONDS
        while True:
            invocation = self._invocation(command_id, instance_id)
            unsettled = invocation is None or invocation["Status"] in _UNDELIVERED | {"Cancelling"}
            if not unsettled or time.monotonic() > deadline:
                return invocation
            time.sleep(0.5)

    def _invoked_instance(self, command_id: str) -> str | None:
        # Commands sent by tag (e.g. by hand) name their instance only in the invocations.
        response = self.ssm_client.list_command_invocations(CommandId=command_id)
        invocations = response.get("CommandInvocations", [])
        return invocations[0]["InstanceId"] if invocations else None

    @staticmethod
    def _from_invocation(invocation: dict[str, Any], instance_id: str) -> ExecutionStatus:
        status = invocation["Status"]
        details = invocation.get("StatusDetails", "")
        for reason in (details, status):
            if never_ran := _NEVER_RAN.get(reason.replace(" ", "").lower()):
                cause, fix = (text.format(instance=instance_id) for text in never_ran)
                return ExecutionStatus(
                    ExecutionState.FAILED, None, f"{cause}; the script never ran: {fix}."
                )
        state, detail = _STATES.get(
            status, (ExecutionState.FAILED, f"unexpected SSM status {status}")
        )
        code = invocation.get("ResponseCode")
        exit_code = code if code is not None and code >= 0 else None
        if not detail and details and details != status:
            detail = f"SSM: {details}"
        return ExecutionStatus(state, exit_code, detail)
