"""The local sandbox: a moto server on 127.0.0.1 playing the user's AWS account.

`orca local up` starts the emulator (and, unless Prefect is configured already, a local
Prefect server) as background processes and records them under ORCA_HOME, so every later
command with the same ORCA_HOME uses them. Orca's side (account 123456789012, moto's
default) then deploys **the link kit's own CloudFormation template** into a second account
(111122223333) exactly as a user would: bucket, FIFO queue and the role Orca assumes with
an ExternalId. The emulator keeps its state in memory; a restarted one is detected (stack
missing) and provisioned again with the same ExternalId.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import boto3

from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.link_defaults import DEFAULT_ROLE_NAME, DEFAULT_STACK_NAME, role_arn_for
from orca_flows.aws.link_template import build_template
from orca_flows.aws.sts import assume_role, caller_identity
from orca_flows.errors import DatabaseError, SandboxError, SandboxNotRunningError
from orca_flows.prefect_adapter.api import configured_prefect_api_url
from orca_flows.sandbox_record import (
    SANDBOX_ACCESS_KEY,
    SANDBOX_ACCOUNT_ID,
    SandboxIdentity,
    SandboxState,
    answers,
    pid_runs,
    running_sandbox,
    sandbox_external_id,
)
from orca_flows.settings import OrcaSettings

__all__ = [
    "SANDBOX_ACCESS_KEY",
    "SANDBOX_ACCOUNT_ID",
    "SandboxState",
    "SandboxStatus",
    "ensure_provisioned",
    "orca_side_factory",
    "running_sandbox",
    "sandbox_clients",
    "sandbox_external_id",
    "sandbox_status",
    "start_sandbox",
    "stop_sandbox",
]

# Who deploys the link stack in the sandbox: the user at their console, so to speak.
_SANDBOX_ADMIN_ROLE = f"arn:aws:iam::{SANDBOX_ACCOUNT_ID}:role/OrcaSandboxAdmin"
_STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SandboxStatus:
    """The answer of up / status: is it running, where, and what had to be (re)created."""

    running: bool
    state: SandboxState | None = None
    already_running: bool = False
    provisioned: tuple[str, ...] = ()
    stale_record_found: bool = False


def orca_side_factory(settings: OrcaSettings, endpoint_url: str) -> ClientFactory:
    """Clients acting as Orca's own account on the emulator."""
    session = boto3.Session(
        aws_access_key_id=SANDBOX_ACCESS_KEY,
        aws_secret_access_key=SANDBOX_ACCESS_KEY,
        region_name=settings.region,
    )
    return ClientFactory(session, settings.region, endpoint_url, settings.aws_max_attempts)


def _user_side_factory(orca: ClientFactory) -> ClientFactory:
    credentials = assume_role(
        orca.client("sts"), _SANDBOX_ADMIN_ROLE, session_name="orca-sandbox-admin"
    )
    session = boto3.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        region_name=orca.region,
    )
    return ClientFactory(session, orca.region, orca.endpoint_url, orca.max_attempts)


def _port(preferred: int) -> int:
    """``preferred`` if it is free, else any free loopback port."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise SandboxError("no free port on 127.0.0.1 for the local sandbox.")


@contextmanager
def _locked(settings: OrcaSettings) -> Iterator[None]:
    """Serialise up/down of one ORCA_HOME across processes."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "sandbox.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_provisioned(settings: OrcaSettings, state: SandboxState) -> tuple[str, ...]:
    """Deploy the link stack in the sandbox account unless it is there; returns what was made.

    Called on every `up`, `status` and sandbox use: a moto server that restarted has lost
    everything, and the same template and ExternalId bring the same names back.
    """
    orca = orca_side_factory(settings, state.endpoint_url)
    cloudformation = _user_side_factory(orca).client("cloudformation")
    try:
        cloudformation.describe_stacks(StackName=DEFAULT_STACK_NAME)
        return ()
    except cloudformation.exceptions.ClientError as error:
        if "does not exist" not in str(error):
            raise
    template = build_template(
        orca_account_id=caller_identity(orca.client("sts")).account,
        bucket_name=state.bucket,
        queue_name=state.queue,
    )
    parameters = {"ExternalId": sandbox_external_id(settings), "RoleName": DEFAULT_ROLE_NAME}
    cloudformation.create_stack(
        StackName=DEFAULT_STACK_NAME,
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    stack = cloudformation.describe_stacks(StackName=DEFAULT_STACK_NAME)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise SandboxError(
            f"the sandbox's link stack ended {stack['StackStatus']}; see "
            f"{settings.sandbox_log_file} and run `orca local down` then `orca local up`."
        )
    # Sandbox links made before the emulator lost its state each use an ExternalId issued
    # to their user: the re-created role trusts them again (services.sandbox_trust).
    from orca_flows.services.sandbox_trust import retrust_sandbox_links

    try:
        retrust_sandbox_links(settings, state)
    except DatabaseError:
        pass  # no database to read: no links to trust yet, the sandbox itself is up
    return (f"s3://{state.bucket}", f"sqs://{state.queue}", state.role_arn)


def _spawn(
    command: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        # A session of its own: the process outlives this command and Ctrl-C in the shell.
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )


def _wait_until_up(process: subprocess.Popen[bytes], url: str, what: str, log: Path) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while not answers(url):
        if process.poll() is not None:
            raise SandboxError(f"{what} exited at start (code {process.returncode}); see {log}.")
        if time.monotonic() > deadline:
            _kill_group(process.pid)
            raise SandboxError(
                f"{what} did not answer on {url} in {_STARTUP_TIMEOUT_S:.0f} s; see {log}."
            )
        time.sleep(0.1)


def _start_prefect(settings: OrcaSettings, port: int, auth_string: str) -> subprocess.Popen[bytes]:
    prefect_home = settings.home / "prefect"
    prefect_home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,  # passed through untouched: PATH, locale, proxies
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        # Prefect is the operator's: its API (blocks holding every link's credentials, every
        # run's logs, deployments' pull steps) answers only Orca's processes and operators.
        "PREFECT_SERVER_API_AUTH_STRING": auth_string,
    }
    prefect = str(Path(sys.executable).with_name("prefect"))
    command = [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    return _spawn(command, settings.home / "prefect-server.log", env)


def start_sandbox(settings: OrcaSettings, *, with_prefect: bool | None = None) -> SandboxStatus:
    """Start the emulator unless it runs already, and deploy the link stack in it.

    Args:
        settings: Orca's settings (ORCA_HOME decides which sandbox).
        with_prefect: Start a local Prefect server too; ``None`` means "unless
            PREFECT_API_URL is configured".
    """
    with _locked(settings):
        stale = settings.sandbox_state_file.exists()
        state = running_sandbox(settings)
        already = state is not None
        if state is None:
            _stop_leftovers(SandboxState.load(settings.sandbox_state_file))
            if with_prefect is None:
                with_prefect = configured_prefect_api_url() is None
            state = _start(settings, with_prefect=with_prefect)
            state.save(settings.sandbox_state_file)
        provisioned = ensure_provisioned(settings, state)
        return SandboxStatus(
            running=True,
            state=state,
            already_running=already,
            provisioned=provisioned,
            stale_record_found=stale and not already,
        )


def _start(settings: OrcaSettings, *, with_prefect: bool) -> SandboxState:
    identity = SandboxIdentity.load(settings.sandbox_identity_file)
    port = _port(settings.sandbox_port or identity.port)
    endpoint_url = f"http://127.0.0.1:{port}"
    moto = _spawn(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        settings.sandbox_log_file,
    )
    prefect = prefect_url = None
    prefect_port = identity.prefect_port
    if with_prefect:
        prefect_port = _port(identity.prefect_port)
        prefect = _start_prefect(settings, prefect_port, identity.prefect_auth_string)
        prefect_url = f"http://127.0.0.1:{prefect_port}/api"
    try:
        _wait_until_up(
            moto, f"{endpoint_url}/moto-api/", "the AWS emulator", settings.sandbox_log_file
        )
        if prefect is not None:
            _wait_until_up(
                prefect,
                f"{prefect_url}/health",
                "the Prefect server",
                settings.home / "prefect-server.log",
            )
    except SandboxError:
        for process in (moto, prefect):
            if process is not None:
                _kill_group(process.pid)
        raise
    replace(identity, port=port, prefect_port=prefect_port).save(settings.sandbox_identity_file)
    return SandboxState(
        pid=moto.pid,
        port=port,
        endpoint_url=endpoint_url,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        region=settings.region,
        bucket=settings.sandbox_bucket,
        queue=settings.sandbox_queue,
        account_id=SANDBOX_ACCOUNT_ID,
        role_arn=role_arn_for(SANDBOX_ACCOUNT_ID, settings.region),
        prefect_pid=prefect.pid if prefect else None,
        prefect_api_url=prefect_url,
    )


def sandbox_status(settings: OrcaSettings) -> SandboxStatus:
    """Whether the sandbox runs; re-provisions a running emulator that lost its state."""
    state = running_sandbox(settings)
    if state is None:
        return SandboxStatus(running=False, stale_record_found=settings.sandbox_state_file.exists())
    return SandboxStatus(running=True, state=state, provisioned=ensure_provisioned(settings, state))


def _kill_group(pid: int, grace_seconds: float = 5.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        _reap(pid)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status when this process started it (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _stop_leftovers(state: SandboxState | None) -> bool:
    """Stop whatever of a recorded sandbox still runs; True if its emulator was running."""
    if state is None:
        return False
    if pid_runs(state.prefect_pid, b"prefect"):
        _kill_group(state.prefect_pid)  # type: ignore[arg-type]
    if not pid_runs(state.pid, b"moto"):
        return False
    _kill_group(state.pid)
    return True


def stop_sandbox(settings: OrcaSettings) -> SandboxState | None:
    """Stop the recorded emulator and Prefect server; ``None`` when none was running.

    A record whose processes are gone (stale) is removed as well.
    """
    with _locked(settings):
        state = SandboxState.load(settings.sandbox_state_file)
        settings.sandbox_state_file.unlink(missing_ok=True)
        return state if _stop_leftovers(state) else None


def sandbox_clients(settings: OrcaSettings) -> ClientFactory:
    """Clients acting as Orca's own account on the running sandbox (stack ensured).

    Raises:
        SandboxNotRunningError: `orca local up` has not been run (or the emulator died).
    """
    state = running_sandbox(settings)
    if state is None:
        raise SandboxNotRunningError()
    ensure_provisioned(settings, state)
    return orca_side_factory(settings, state.endpoint_url)
