"""The local sandbox: an AWS emulator on 127.0.0.1 playing the user's AWS account.

`orca local up` starts the emulator (``python -m orca_emulator``: moto's server with an SSM
agent that really runs commands on its emulated EC2 instances) and, unless Prefect is
configured already, a local Prefect server as background processes and records them under
ORCA_HOME, so every later command with the same ORCA_HOME uses them. Orca's side (account
123456789012, moto's default) then deploys **the link kit's own CloudFormation template** into a second account
(111122223333) exactly as a user would: bucket, FIFO queue and the role Orca assumes with
an ExternalId. The user's side also launches the fleet of emulated instances
(``orca_flows.local.fleet``). The emulator keeps its state in memory; a restarted one is
detected (stack missing) and provisioned again with the same ExternalId and as many
instances as recorded.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from orca_emulator.layout import instances_dir
from orca_emulator.processes import terminate_processes
from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.link_defaults import DEFAULT_ROLE_NAME, DEFAULT_STACK_NAME, role_arn_for
from orca_flows.aws.link_template import build_template
from orca_flows.aws.sts import caller_identity
from orca_flows.errors import DatabaseError, SandboxError, SandboxNotRunningError
from orca_flows.local.accounts import orca_side_factory, user_side_factory
from orca_flows.local.fleet import (
    DEFAULT_INSTANCES,
    FleetInstance,
    check_instance_count,
    ensure_fleet,
    fleet_instances,
)
from orca_flows.local.processes import free_port, kill_group, spawn, wait_until_up
from orca_flows.prefect_adapter.api import configured_prefect_api_url
from orca_flows.sandbox_record import (
    EMULATOR_PROCESS_MARKER,
    SANDBOX_ACCESS_KEY,
    SANDBOX_ACCOUNT_ID,
    SandboxIdentity,
    SandboxState,
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

# What a sandbox recorded before the emulator was Orca's ran (`python -m moto.server`).
_OLD_EMULATOR_MARKER = b"moto.server"


@dataclass(frozen=True)
class SandboxStatus:
    """The answer of up / status: is it running, where, and what had to be (re)created.

    ``provisioned`` is the link stack's resources when they had to be created, ``launched``
    the ids of instances just launched, ``instances`` the fleet as it is now.
    """

    running: bool
    state: SandboxState | None = None
    already_running: bool = False
    provisioned: tuple[str, ...] = ()
    stale_record_found: bool = False
    launched: tuple[str, ...] = ()
    instances: tuple[FleetInstance, ...] = ()


@contextmanager
def _locked(settings: OrcaSettings) -> Iterator[None]:
    """Serialise up/down of one ORCA_HOME across processes."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "sandbox.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_provisioned(settings: OrcaSettings, state: SandboxState) -> tuple[str, ...]:
    """Deploy the link stack and the fleet unless they are there; returns what was made.

    Called on every `up`, `status` and sandbox use: an emulator that restarted has lost
    everything, and the same template and ExternalId bring the same names back, and
    ``state.instance_count`` instances (with new ids). The caller holds the sandbox's lock.
    """
    stack, launched = _provision(settings, state)
    return stack + launched


def _provision(
    settings: OrcaSettings, state: SandboxState
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the stack's resources if it was created, the ids of the instances launched)."""
    stack = _ensure_stack(settings, state)
    return stack, ensure_fleet(settings, state, state.instance_count)


def _ensure_stack(settings: OrcaSettings, state: SandboxState) -> tuple[str, ...]:
    orca = orca_side_factory(settings, state.endpoint_url)
    cloudformation = user_side_factory(orca).client("cloudformation")
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
    return spawn(command, settings.home / "prefect-server.log", env)


def start_sandbox(
    settings: OrcaSettings, *, with_prefect: bool | None = None, instances: int | None = None
) -> SandboxStatus:
    """Start the emulator unless it runs already, and deploy the link stack and fleet in it.

    Args:
        settings: Orca's settings (ORCA_HOME decides which sandbox).
        with_prefect: Start a local Prefect server too; ``None`` means "unless
            PREFECT_API_URL is configured".
        instances: How many emulated EC2 instances to run (extra ones are terminated);
            ``None`` keeps the recorded number (``DEFAULT_INSTANCES`` for a new sandbox).

    Raises:
        InvalidInputError: ``instances`` out of range (nothing is started).
        SandboxError: The emulator or Prefect server did not start.
    """
    if instances is not None:
        check_instance_count(instances)
    with _locked(settings):
        recorded = SandboxState.load(settings.sandbox_state_file)
        stale = settings.sandbox_state_file.exists()
        state = running_sandbox(settings)
        already = state is not None
        if state is None:
            _stop_leftovers(recorded)
            if with_prefect is None:
                with_prefect = configured_prefect_api_url() is None
            if instances is None:
                instances = recorded.instance_count if recorded else DEFAULT_INSTANCES
            state = _start(settings, with_prefect=with_prefect, instances=instances)
            state.save(settings.sandbox_state_file)
        elif instances is not None and instances != state.instance_count:
            state = replace(state, instance_count=instances)
            state.save(settings.sandbox_state_file)
        provisioned, launched = _provision(settings, state)
        return SandboxStatus(
            running=True,
            state=state,
            already_running=already,
            provisioned=provisioned,
            stale_record_found=stale and not already,
            launched=launched,
            instances=tuple(fleet_instances(settings, state)),
        )


def _start(settings: OrcaSettings, *, with_prefect: bool, instances: int) -> SandboxState:
    identity = SandboxIdentity.load(settings.sandbox_identity_file)
    port = free_port(settings.sandbox_port or identity.port)
    endpoint_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "orca_emulator", "--home", str(settings.home)]
    emulator = spawn([*command, "-H", "127.0.0.1", "-p", str(port)], settings.sandbox_log_file)
    prefect = prefect_url = None
    prefect_port = identity.prefect_port
    if with_prefect:
        prefect_port = free_port(identity.prefect_port)
        prefect = _start_prefect(settings, prefect_port, identity.prefect_auth_string)
        prefect_url = f"http://127.0.0.1:{prefect_port}/api"
    try:
        wait_until_up(
            emulator, f"{endpoint_url}/moto-api/", "the AWS emulator", settings.sandbox_log_file
        )
        if prefect is not None:
            wait_until_up(
                prefect,
                f"{prefect_url}/health",
                "the Prefect server",
                settings.home / "prefect-server.log",
            )
    except SandboxError:
        for process in (emulator, prefect):
            if process is not None:
                kill_group(process.pid)
        raise
    replace(identity, port=port, prefect_port=prefect_port).save(settings.sandbox_identity_file)
    return SandboxState(
        pid=emulator.pid,
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
        instance_count=instances,
    )


def sandbox_status(settings: OrcaSettings) -> SandboxStatus:
    """Whether the sandbox runs; re-provisions a running emulator that lost its state."""
    with _locked(settings):
        state = running_sandbox(settings)
        if state is None:
            stale = settings.sandbox_state_file.exists()
            return SandboxStatus(running=False, stale_record_found=stale)
        provisioned, launched = _provision(settings, state)
        return SandboxStatus(
            running=True,
            state=state,
            provisioned=provisioned,
            launched=launched,
            instances=tuple(fleet_instances(settings, state)),
        )


def _stop_leftovers(state: SandboxState | None) -> bool:
    """Stop whatever of a recorded sandbox still runs; True if its emulator was running."""
    if state is None:
        return False
    if pid_runs(state.prefect_pid, b"prefect"):
        kill_group(state.prefect_pid)  # type: ignore[arg-type]
    running = pid_runs(state.pid, EMULATOR_PROCESS_MARKER) or pid_runs(
        state.pid, _OLD_EMULATOR_MARKER
    )
    if running:
        kill_group(state.pid)  # SIGTERM: the emulator ends its instances' processes itself
    # An emulator that died without that (SIGKILL, a crash) left them running: end them.
    terminate_processes(state.pid)
    return running


def stop_sandbox(settings: OrcaSettings) -> SandboxState | None:
    """Stop the recorded emulator and Prefect server; ``None`` when none was running.

    A record whose processes are gone (stale) is removed as well, and so are the fleet's
    directories: the emulator forgets its instances when it stops.
    """
    with _locked(settings):
        state = SandboxState.load(settings.sandbox_state_file)
        settings.sandbox_state_file.unlink(missing_ok=True)
        stopped = _stop_leftovers(state)
        shutil.rmtree(instances_dir(settings.home), ignore_errors=True)
        return state if stopped else None


def sandbox_clients(settings: OrcaSettings) -> ClientFactory:
    """Clients acting as Orca's own account on the running sandbox (stack ensured).

    Raises:
        SandboxNotRunningError: `orca local up` has not been run (or the emulator died).
    """
    state = running_sandbox(settings)
    if state is None:
        raise SandboxNotRunningError()
    with _locked(settings):
        ensure_provisioned(settings, state)
    return orca_side_factory(settings, state.endpoint_url)
