"""The local sandbox: a moto server on 127.0.0.1 standing in for the user's AWS account.

`orca local up` starts it as a background process and records its pid and endpoint under
ORCA_HOME, so every later command with the same ORCA_HOME talks to the same emulator. The
emulator keeps its state in memory; a restarted one is detected (bucket or queue missing)
and provisioned again.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from orca_flows.aws.clients import ClientFactory
from orca_flows.errors import SandboxError, SandboxNotRunningError
from orca_flows.settings import OrcaSettings

__all__ = [
    "QUEUE_ATTRIBUTES",
    "SANDBOX_ACCESS_KEY",
    "SandboxState",
    "SandboxStatus",
    "ensure_provisioned",
    "running_sandbox",
    "sandbox_clients",
    "sandbox_status",
    "start_sandbox",
    "stop_sandbox",
]

# The emulator accepts any key; fixed fake ones keep real credentials out of local mode.
SANDBOX_ACCESS_KEY = "orca-sandbox"
_STARTUP_TIMEOUT_S = 30.0

# Orca sends explicit deduplication ids (the run id), so content-based dedup stays off:
# two runs with the same body must both be delivered.
QUEUE_ATTRIBUTES = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "VisibilityTimeout": "60",
    "ReceiveMessageWaitTimeSeconds": "20",
    "MessageRetentionPeriod": "1209600",
}


@dataclass(frozen=True)
class SandboxState:
    """What `orca local up` records under ORCA_HOME."""

    pid: int
    port: int
    endpoint_url: str
    started_at: str
    bucket: str
    queue: str

    @classmethod
    def load(cls, path: Path) -> SandboxState | None:
        """The recorded state, or ``None`` when nothing (readable) is recorded."""
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        """Write atomically so a concurrent reader never sees half a file."""
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2))
        os.replace(temporary, path)


@dataclass(frozen=True)
class SandboxStatus:
    """The answer of up / status: is it running, where, and what had to be (re)created."""

    running: bool
    state: SandboxState | None = None
    already_running: bool = False
    provisioned: tuple[str, ...] = ()
    stale_record_found: bool = False


def _factory(settings: OrcaSettings, endpoint_url: str) -> ClientFactory:
    session = boto3.Session(
        aws_access_key_id=SANDBOX_ACCESS_KEY,
        aws_secret_access_key=SANDBOX_ACCESS_KEY,
        region_name=settings.region,
    )
    return ClientFactory(
        session=session,
        region=settings.region,
        endpoint_url=endpoint_url,
        max_attempts=settings.aws_max_attempts,
    )


def _pid_is_emulator(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"moto" in cmdline


def _answers(endpoint_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _locked(settings: OrcaSettings) -> Iterator[None]:
    """Serialise up/down of one ORCA_HOME across processes."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "sandbox.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def running_sandbox(settings: OrcaSettings) -> SandboxState | None:
    """The recorded sandbox if its process is alive and answering, else ``None``."""
    state = SandboxState.load(settings.sandbox_state_file)
    if state and _pid_is_emulator(state.pid) and _answers(state.endpoint_url):
        return state
    return None


def ensure_provisioned(factory: ClientFactory, bucket: str, queue: str) -> tuple[str, ...]:
    """Create Orca's bucket and FIFO queue where missing; returns what had to be created.

    Called on every `up` and `status`: a moto server that restarted has lost both.
    """
    created: list[str] = []
    s3 = factory.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] not in {"404", "NoSuchBucket", "NotFound"}:
            raise
        s3.create_bucket(Bucket=bucket)
        created.append(f"s3://{bucket}")
    sqs = factory.client("sqs")
    try:
        sqs.get_queue_url(QueueName=queue)
    except sqs.exceptions.QueueDoesNotExist:
        sqs.create_queue(QueueName=queue, Attributes=QUEUE_ATTRIBUTES)
        created.append(f"sqs://{queue}")
    return tuple(created)


def _spawn(settings: OrcaSettings) -> SandboxState:
    port = settings.sandbox_port or _free_port()
    endpoint_url = f"http://127.0.0.1:{port}"
    with open(settings.sandbox_log_file, "ab") as log:
        # A session of its own: the emulator outlives this command and Ctrl-C in the shell.
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while not _answers(endpoint_url):
        if process.poll() is not None:
            raise SandboxError(
                f"the local AWS emulator exited at start (code {process.returncode}); "
                f"see {settings.sandbox_log_file} (port {port} may be taken: set "
                "ORCA_SANDBOX_PORT=0 for a free one)."
            )
        if time.monotonic() > deadline:
            process.kill()
            raise SandboxError(
                f"the local AWS emulator did not answer on {endpoint_url} within "
                f"{_STARTUP_TIMEOUT_S:.0f} s; see {settings.sandbox_log_file}."
            )
        time.sleep(0.1)
    return SandboxState(
        pid=process.pid,
        port=port,
        endpoint_url=endpoint_url,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        bucket=settings.sandbox_bucket,
        queue=settings.sandbox_queue,
    )


def start_sandbox(settings: OrcaSettings) -> SandboxStatus:
    """Start the emulator unless it runs already, and provision Orca's bucket and queue."""
    with _locked(settings):
        stale = settings.sandbox_state_file.exists()
        state = running_sandbox(settings)
        already = state is not None
        if state is None:
            state = _spawn(settings)
            state.save(settings.sandbox_state_file)
        provisioned = ensure_provisioned(
            _factory(settings, state.endpoint_url), state.bucket, state.queue
        )
        return SandboxStatus(
            running=True,
            state=state,
            already_running=already,
            provisioned=provisioned,
            stale_record_found=stale and not already,
        )


def sandbox_status(settings: OrcaSettings) -> SandboxStatus:
    """Whether the sandbox runs; re-provisions a running emulator that lost its state."""
    state = running_sandbox(settings)
    if state is None:
        return SandboxStatus(
            running=False, stale_record_found=settings.sandbox_state_file.exists()
        )
    provisioned = ensure_provisioned(
        _factory(settings, state.endpoint_url), state.bucket, state.queue
    )
    return SandboxStatus(running=True, state=state, provisioned=provisioned)


def stop_sandbox(settings: OrcaSettings, *, grace_seconds: float = 5.0) -> SandboxState | None:
    """Stop the recorded emulator; returns its state, or ``None`` when none was running.

    A record whose process is gone (stale) is removed as well.
    """
    with _locked(settings):
        state = SandboxState.load(settings.sandbox_state_file)
        settings.sandbox_state_file.unlink(missing_ok=True)
        if state is None or not _pid_is_emulator(state.pid):
            return None
        os.killpg(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while _pid_is_emulator(state.pid) and time.monotonic() < deadline:
            _reap(state.pid)
            time.sleep(0.05)
        if _pid_is_emulator(state.pid):
            os.killpg(state.pid, signal.SIGKILL)
        _reap(state.pid)
        return state


def _reap(pid: int) -> None:
    """Collect the exit status when this process started the emulator (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def sandbox_clients(settings: OrcaSettings) -> ClientFactory:
    """A client factory for the running sandbox, its bucket and queue ensured to exist.

    Raises:
        SandboxNotRunningError: `orca local up` has not been run (or the emulator died).
    """
    state = running_sandbox(settings)
    if state is None:
        raise SandboxNotRunningError()
    factory = _factory(settings, state.endpoint_url)
    ensure_provisioned(factory, state.bucket, state.queue)
    return factory
