"""The sandbox's AWS emulator over HTTP, and what an SSM user does with it: send a
command, poll its invocation, look at the instance's processes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import Emulator, start_emulator

DOCUMENT = "AWS-RunShellScript"
FINAL = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One emulator per test module (instances are cheap: each test launches its own)."""
    running = start_emulator(tmp_path_factory.mktemp("emulator"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def ssm(emulator: Emulator) -> Any:
    """An SSM client of the user's account on the emulator."""
    return emulator.client("ssm")


def until(condition: Callable[[], Any], timeout: float = 15.0, every: float = 0.05) -> Any:
    """Poll ``condition`` until it is truthy (and return it), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)
    return result


def send(ssm: Any, instance_ids: list[str], *commands: str, **options: Any) -> str:
    """SendCommand AWS-RunShellScript; returns the command id."""
    parameters = {"commands": list(commands)} | options.pop("parameters", {})
    answer = ssm.send_command(
        InstanceIds=instance_ids, DocumentName=DOCUMENT, Parameters=parameters, **options
    )
    return str(answer["Command"]["CommandId"])


def invocation(ssm: Any, command_id: str, instance_id: str) -> dict[str, Any] | None:
    """GetCommandInvocation, or ``None`` while SSM answers InvocationDoesNotExist."""
    try:
        return dict(ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id))
    except ssm.exceptions.InvocationDoesNotExist:
        return None


def status(ssm: Any, command_id: str, instance_id: str) -> str | None:
    """The invocation's Status (``None``: InvocationDoesNotExist)."""
    found = invocation(ssm, command_id, instance_id)
    return None if found is None else str(found["Status"])


def final(ssm: Any, command_id: str, instance_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """Poll GetCommandInvocation until the invocation has ended; its last answer."""

    def ended() -> dict[str, Any] | None:
        found = invocation(ssm, command_id, instance_id)
        return found if found and found["Status"] in FINAL else None

    return dict(until(ended, timeout))


def command(ssm: Any, command_id: str) -> dict[str, Any]:
    """ListCommands' entry for one command."""
    return dict(ssm.list_commands(CommandId=command_id)["Commands"][0])


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie nobody reaped yet counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pid_in(path: Path) -> int:
    """The pid a command wrote to ``path`` (waits for the file)."""
    until(lambda: path.exists() and path.read_text().strip())
    return int(path.read_text())


def process_group(pid: int) -> int:
    """The process group of a running process."""
    return os.getpgid(pid)
