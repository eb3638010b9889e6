"""The SSM agent of the emulated instances: it runs each command with bash, as AWS's does.

One thread per invocation (a command on one instance) walks SSM's lifecycle:

- ``InvocationDoesNotExist`` for a moment after SendCommand (SSM's own lag), then
  ``Pending`` until the instance's agent picks the command up. An agent that is stopped,
  or whose EC2 instance is (``ConnectionLost``), picks nothing up: the command stays
  undelivered until its delivery timeout (``TimeoutSeconds``) and then ends ``TimedOut`` /
  ``DeliveryTimedOut``.
- ``InProgress`` while bash runs the document's commands in the instance's directory, in
  a session (so a process group) of its own, under ``executionTimeout`` (then ``TimedOut``
  / ``ExecutionTimedOut``, the group killed).
- ``Success`` (exit 0) or ``Failed`` (the exit code); ``Cancelling`` from CancelCommand
  until the cancel has reached the agent (SSM's lag again) and it has killed the group,
  then ``Cancelled``.

Output is kept as SSM keeps it: the first 24,000 characters of stdout and 8,000 of stderr
in GetCommandInvocation, the whole of both in S3 when the command names a bucket. A result
reached while the agent is stopped is reported when it is started again.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orca_emulator.layout import agent_stopped_flag, instance_dir
from orca_emulator.processes import (
    EMULATOR_MARKER,
    INSTANCE_MARKER,
    kill_group,
    terminate_processes,
)

__all__ = [
    "STDERR_LIMIT",
    "STDOUT_LIMIT",
    "Agent",
    "Invocation",
]

logger = logging.getLogger(__name__)  # to stderr: the sandbox's log

STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
# CommandPlugins[].Output of ListCommandInvocations(Details=True).
_PLUGIN_OUTPUT_LIMIT = 2_500
# How long SSM takes to register an invocation after SendCommand (and to hand a cancel to
# the agent: "Cancelling" lasts at least that), and how often an online agent looks for work.
REGISTER_SECONDS = 0.3
POLL_SECONDS = 0.1
_PLUGIN = "aws:runShellScript"
_FINAL = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})


def _now() -> datetime:
    return datetime.now(UTC)


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


@dataclass
class Invocation:
    """One command on one instance, as SSM reports it."""

    command_id: str
    instance_id: str
    comment: str
    document_name: str
    commands: list[str]
    execution_timeout: int
    delivery_timeout: int
    output_bucket: str
    output_prefix: str
    account_id: str = ""
    region: str = ""
    requested_at: datetime = field(default_factory=_now)
    sent_at: float = field(default_factory=time.monotonic)
    status: str = "Pending"
    details: str = "Pending"
    response_code: int = -1
    started_at: datetime | None = None
    ended_at: datetime | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_url: str = ""
    stderr_url: str = ""
    cancel_requested: bool = False
    cancel_requested_at: float = 0.0
    process: subprocess.Popen[bytes] | None = None
    # Held while the agent changes the invocation and while an answer is built from it,
    # so no answer mixes a final Status with the output of before (empty, -1).
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def registered(self) -> bool:
        """Whether SSM knows the invocation yet (before: InvocationDoesNotExist)."""
        return time.monotonic() - self.sent_at >= REGISTER_SECONDS

    @property
    def cancel_delivered(self) -> bool:
        """Whether a CancelCommand has reached the agent (SSM's lag, as for the command)."""
        return (
            self.cancel_requested
            and time.monotonic() - self.cancel_requested_at >= REGISTER_SECONDS
        )

    @property
    def finished(self) -> bool:
        """Whether SSM reports a final status (the agent is done with it)."""
        return self.status in _FINAL

    def get_response(self) -> dict[str, Any]:
        """GetCommandInvocation's answer."""
        with self.lock:
            return self._get_response()

    def _get_response(self) -> dict[str, Any]:
        elapsed = ""
        if self.started_at is not None:
            elapsed = _duration(((self.ended_at or _now()) - self.started_at).total_seconds())
        return {
            "CommandId": self.command_id,
            "InstanceId": self.instance_id,
            "Comment": self.comment,
            "DocumentName": self.document_name,
            "DocumentVersion": "$DEFAULT",
            "PluginName": _PLUGIN,
            "ResponseCode": self.response_code,
            "ExecutionStartDateTime": self.started_at.isoformat() if self.started_at else "",
            "ExecutionElapsedTime": elapsed,
            "ExecutionEndDateTime": self.ended_at.isoformat() if self.ended_at else "",
            "Status": self.status,
            "StatusDetails": self.details,
            "StandardOutputContent": self.stdout[:STDOUT_LIMIT],
            "StandardOutputUrl": self.stdout_url,
            "StandardErrorContent": self.stderr[:STDERR_LIMIT],
            "StandardErrorUrl": self.stderr_url,
        }

    def list_entry(self, *, details: bool) -> dict[str, Any]:
        """One entry of ListCommandInvocations."""
        with self.lock:
            return self._list_entry(details=details)

    def _list_entry(self, *, details: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "CommandId": self.command_id,
            "InstanceId": self.instance_id,
            "InstanceName": "",
            "Comment": self.comment,
            "DocumentName": self.document_name,
            "DocumentVersion": "$DEFAULT",
            "RequestedDateTime": self.requested_at,
            "Status": self.status,
            "StatusDetails": self.details,
            "StandardOutputUrl": self.stdout_url,
            "StandardErrorUrl": self.stderr_url,
        }
        if details:
            plugin: dict[str, Any] = {
                "Name": _PLUGIN,
                "Status": self.status,
                "StatusDetails": self.details,
                "ResponseCode": self.response_code,
                "Output": (self.stdout + self.stderr)[:_PLUGIN_OUTPUT_LIMIT],
                "StandardOutputUrl": self.stdout_url,
                "StandardErrorUrl": self.stderr_url,
            }
            if self.started_at:
                plugin["ResponseStartDateTime"] = self.started_at
            if self.ended_at:
                plugin["ResponseFinishDateTime"] = self.ended_at
            entry["CommandPlugins"] = [plugin]
        return entry


# (instance id) -> the environment its commands run with (instance credentials included).
EnvironmentFor = Callable[[Invocation], dict[str, str]]
# (invocation, stdout bytes, stderr bytes) -> (stdout url, stderr url), after a command.
OutputUploader = Callable[[Invocation, bytes, bytes], tuple[str, str]]
# (invocation) -> whether its EC2 instance is running (a stopped one's agent is down too).
InstanceRunning = Callable[[Invocation], bool]


class Agent:
    """The SSM agents of every emulated instance of one emulator process.

    Args:
        home: ORCA_HOME of the sandbox (instance directories and agent flags).
        environment_for: The environment a command runs with on its instance.
        upload_output: Copies a finished command's output to its S3 bucket.
        running: Whether an invocation's instance is running (default: always).
    """

    def __init__(
        self,
        home: Path,
        environment_for: EnvironmentFor,
        upload_output: OutputUploader,
        running: InstanceRunning | None = None,
    ) -> None:
        self.home = home
        self._environment_for = environment_for
        self._upload_output = upload_output
        self._running = running or (lambda _invocation: True)
        self._lock = threading.Lock()
        self._invocations: dict[str, list[Invocation]] = {}

    def online(self, instance_id: str) -> bool:
        """Whether the instance's agent runs (PingStatus ``Online``)."""
        return not agent_stopped_flag(self.home, instance_id).exists()

    def _reachable(self, invocation: Invocation) -> bool:
        """Whether the invocation's agent talks to SSM: started, on a running instance."""
        return self.online(invocation.instance_id) and self._running(invocation)

    def submit(self, invocations: list[Invocation]) -> None:
        """Take a command's invocations and deliver each in a thread of its own."""
        if not invocations:
            return
        with self._lock:
            self._invocations[invocations[0].command_id] = invocations
        for invocation in invocations:
            threading.Thread(
                target=self._lifecycle, args=(invocation,), daemon=True, name="ssm-agent"
            ).start()

    def invocations(self, command_id: str) -> list[Invocation] | None:
        """A command's invocations (``None``: not a command this agent ran)."""
        with self._lock:
            return self._invocations.get(command_id)

    def cancel(self, command_id: str, instance_ids: list[str] | None) -> None:
        """Ask the agents to cancel (CancelCommand): ``Cancelling`` until they have."""
        with self._lock:
            invocations = list(self._invocations.get(command_id, []))
        for invocation in invocations:
            if instance_ids and invocation.instance_id not in instance_ids:
                continue
            with invocation.lock:
                if invocation.finished or invocation.cancel_requested:
                    continue
                invocation.cancel_requested = True
                invocation.cancel_requested_at = time.monotonic()
                invocation.status = invocation.details = "Cancelling"

    def terminate_all(self) -> None:
        """Kill every process the instances run (the emulator is stopping)."""
        terminate_processes(os.getpid())

    # --- one invocation's life ------------------------------------------------------------

    def _lifecycle(self, invocation: Invocation) -> None:
        try:
            if self._delivered(invocation):
                self._execute(invocation)
        except Exception as error:  # the agent's own failure: the command fails, loudly
            logger.exception("ssm agent: command %s failed on its own", invocation.command_id)
            self._finish(invocation, "Failed", "Failed", -1, stderr=f"ssm agent error: {error}")

    def _delivered(self, invocation: Invocation) -> bool:
        """Wait for the instance's agent to take the command; False if it never did."""
        deadline = invocation.sent_at + invocation.delivery_timeout
        while True:
            time.sleep(POLL_SECONDS)
            if invocation.cancel_delivered:
                self._finish(invocation, "Cancelled", "Cancelled", -1)
                return False
            # A command being cancelled is not handed out any more.
            if invocation.registered and not invocation.cancel_requested:
                if self._reachable(invocation):
                    return True
            if time.monotonic() > deadline:
                self._finish(invocation, "TimedOut", "DeliveryTimedOut", -1)
                return False

    def _execute(self, invocation: Invocation) -> None:
        work = instance_dir(self.home, invocation.instance_id)
        command_dir = work / "commands" / invocation.command_id
        command_dir.mkdir(parents=True, exist_ok=True)
        script = command_dir / "_script.sh"
        script.write_text("\n".join(invocation.commands) + "\n", encoding="utf-8")
        env = self._environment_for(invocation) | {
            EMULATOR_MARKER: str(os.getpid()),
            INSTANCE_MARKER: invocation.instance_id,
        }
        with (
            open(command_dir / "stdout", "wb") as stdout,
            open(command_dir / "stderr", "wb") as stderr,
        ):
            process = subprocess.Popen(
                ["bash", str(script)],
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # the agent's own process group per command
            )
        with invocation.lock:
            invocation.process = process
            invocation.started_at = _now()
            if not invocation.cancel_requested:
                invocation.status = invocation.details = "InProgress"
        ending = self._wait(invocation, process)
        # A result reached while the agent is stopped waits for it to come back; one whose
        # instance stopped or terminated meanwhile is lost with it.
        while ending != "lost" and not self._reachable(invocation):
            if not self._running(invocation):
                ending = "lost"
            time.sleep(POLL_SECONDS)
        if ending == "lost":
            terminate_processes(os.getpid(), invocation.instance_id)
            self._finish(invocation, "Failed", "Failed", -1, stderr="the instance stopped")
            return
        out, err = (command_dir / "stdout").read_bytes(), (command_dir / "stderr").read_bytes()
        urls = self._upload_output(invocation, out, err) if invocation.output_bucket else ("", "")
        # A process killed by a signal has no exit code: SSM reports -1, not Python's -N.
        code = max(process.returncode, -1)
        if ending == "cancelled":
            final = ("Cancelled", "Cancelled", -1)
        elif ending == "timed_out":
            final = ("TimedOut", "ExecutionTimedOut", -1)
        else:  # exited by itself: a cancel that came after that changes nothing
            final = ("Success", "Success", 0) if code == 0 else ("Failed", "Failed", code)
        self._finish(invocation, *final, stdout=_text(out), stderr=_text(err), urls=urls)

    def _wait(self, invocation: Invocation, process: subprocess.Popen[bytes]) -> str:
        """Wait for the command's bash to exit; kill its group on cancel or timeout.

        Returns how it ended: ``exited``, ``cancelled``, ``timed_out`` or ``lost`` (its
        instance stopped or terminated, and its processes with it).
        """
        deadline = time.monotonic() + invocation.execution_timeout
        while process.poll() is None:
            if not self._running(invocation):
                kill_group(process)
                process.wait()
                return "lost"
            # The agent acts on a cancel or its timeout only while it runs, as AWS's does.
            if self.online(invocation.instance_id):
                if invocation.cancel_delivered:
                    kill_group(process)
                    process.wait()
                    return "cancelled"
                if time.monotonic() > deadline:
                    kill_group(process)
                    process.wait()
                    return "timed_out"
            time.sleep(POLL_SECONDS)
        return "exited"

    def _finish(
        self,
        invocation: Invocation,
        status: str,
        details: str,
        code: int,
        *,
        stdout: str = "",
        stderr: str = "",
        urls: tuple[str, str] = ("", ""),
    ) -> None:
        with invocation.lock:
            invocation.status, invocation.details, invocation.response_code = status, details, code
            invocation.stdout, invocation.stderr = stdout, stderr
            invocation.stdout_url, invocation.stderr_url = urls
            if invocation.started_at is not None:
                invocation.ended_at = _now()


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
