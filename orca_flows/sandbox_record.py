"""What `orca local up` recorded under ORCA_HOME, and whether that sandbox is alive.

Read by every layer that needs the sandbox's endpoints (the Prefect API choice, local
links); starting and stopping the processes is `orca_flows.local.sandbox`, the CLI's.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orca_flows.aws.link_kit import new_external_id
from orca_flows.settings import OrcaSettings

__all__ = [
    "DEFAULT_SANDBOX_INSTANCES",
    "EMULATOR_PROCESS_MARKER",
    "SANDBOX_ACCESS_KEY",
    "SANDBOX_ACCOUNT_ID",
    "SandboxIdentity",
    "SandboxState",
    "answers",
    "new_prefect_auth_string",
    "pid_runs",
    "running_sandbox",
    "sandbox_external_id",
    "sandbox_prefect_auth_string",
    "write_private",
]

# The emulator accepts any key; fixed fake ones keep real credentials out of local mode.
SANDBOX_ACCESS_KEY = "orca-sandbox"
# The account the sandbox plays for the user (Orca's own side is moto's default account).
SANDBOX_ACCOUNT_ID = "111122223333"
# How many emulated EC2 instances `orca local up` runs unless told (`--instances N`).
DEFAULT_SANDBOX_INSTANCES = 2
# In the emulator's command line (`python -m orca_emulator ...`): a recorded pid that a
# later process reused is not taken for the sandbox.
EMULATOR_PROCESS_MARKER = b"orca_emulator"


def new_prefect_auth_string() -> str:
    """A fresh ``user:password`` for the sandbox's Prefect server (Prefect's basic auth)."""
    return f"orca:{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class SandboxIdentity:
    """What survives `orca local down`: the ports, the sandbox link's ExternalId and the
    auth string of the sandbox's Prefect server (the file is the owner's only, 0600).

    Keeping them makes local links (their block stores endpoint and ExternalId) work again
    after a restart, and keeps the Prefect UI's sign-in the same.
    """

    external_id: str = field(default_factory=new_external_id)
    port: int = 0
    prefect_port: int = 0
    # Prefect holds every link's credentials block and every run's log: its API answers
    # only requests carrying this (PREFECT_SERVER_API_AUTH_STRING / PREFECT_API_AUTH_STRING).
    prefect_auth_string: str = field(default_factory=new_prefect_auth_string)

    @classmethod
    def load(cls, path: Path) -> SandboxIdentity:
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return cls()

    def save(self, path: Path) -> None:
        write_private(path, json.dumps(asdict(self), indent=2))


@dataclass(frozen=True)
class SandboxState:
    """What `orca local up` records under ORCA_HOME about the running processes."""

    pid: int
    port: int
    endpoint_url: str
    started_at: str
    region: str
    bucket: str
    queue: str
    account_id: str
    role_arn: str
    prefect_pid: int | None = None
    prefect_api_url: str | None = None
    # The fleet's size, kept so a restarted emulator gets the same number of instances
    # back (records written before the fleet existed load with the default).
    instance_count: int = DEFAULT_SANDBOX_INSTANCES

    @classmethod
    def load(cls, path: Path) -> SandboxState | None:
        """The recorded state, or ``None`` when nothing (readable) is recorded."""
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        """Write atomically so a concurrent reader never sees half a file."""
        write_private(path, json.dumps(asdict(self), indent=2))


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by the owner only (0600)."""
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # a leftover temporary file may have kept its mode
        file.write(text)
    os.replace(temporary, path)


def pid_runs(pid: int | None, marker: bytes) -> bool:
    """Whether process ``pid`` runs and its command line contains ``marker``."""
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return marker in cmdline


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def running_sandbox(settings: OrcaSettings) -> SandboxState | None:
    """The recorded sandbox if its emulator is alive and answering, else ``None``."""
    state = SandboxState.load(settings.sandbox_state_file)
    if (
        state
        and pid_runs(state.pid, EMULATOR_PROCESS_MARKER)
        and answers(f"{state.endpoint_url}/moto-api/")
    ):
        return state
    return None


def sandbox_external_id(settings: OrcaSettings) -> str:
    """The ExternalId the sandbox's role requires (kept across restarts)."""
    return SandboxIdentity.load(settings.sandbox_identity_file).external_id


def sandbox_prefect_auth_string(settings: OrcaSettings) -> str | None:
    """The auth string of the sandbox's Prefect server, ``None`` when none was recorded."""
    try:
        recorded = json.loads(settings.sandbox_identity_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    value = recorded.get("prefect_auth_string") if isinstance(recorded, dict) else None
    return value if isinstance(value, str) else None
