"""`orca local up | down | status | agent`: the local AWS emulator and its EC2 fleet."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from orca_flows.cli.common import JsonOption, console, exits_on_error, print_json
from orca_flows.local.fleet import DEFAULT_INSTANCES, MAX_INSTANCES, FleetInstance, set_agent
from orca_flows.local.sandbox import (
    SandboxStatus,
    sandbox_status,
    start_sandbox,
    stop_sandbox,
)
from orca_flows.settings import get_settings

app = typer.Typer(help="The local sandbox: an AWS emulator on 127.0.0.1.", no_args_is_help=True)
agent_app = typer.Typer(
    help="The SSM agent of one of the sandbox's emulated EC2 instances.", no_args_is_help=True
)
app.add_typer(agent_app, name="agent")

InstanceArgument = Annotated[
    str, typer.Argument(help="The instance's id (`orca local status` lists them).")
]


def _as_dict(status: SandboxStatus) -> dict[str, object]:
    return {
        "running": status.running,
        **(asdict(status.state) if status.state else {}),
        "provisioned": list(status.provisioned),
        "launched": list(status.launched),
        "instances": [asdict(instance) for instance in status.instances],
    }


def _instance_line(instance: FleetInstance) -> str:
    name = instance.tags.get("Name", "-")
    return f"{instance.id}  {name:<16} {instance.ping_status}"


def _describe(status: SandboxStatus) -> None:
    state = status.state
    if state is None:
        return
    console.print(f"  endpoint  {state.endpoint_url}   (pid {state.pid})")
    console.print(f"  bucket    s3://{state.bucket}")
    console.print(f"  queue     {state.queue}")
    console.print(f"  account   {state.account_id} (role {state.role_arn})")
    if state.prefect_api_url:
        console.print(f"  prefect   {state.prefect_api_url.removesuffix('/api')}  (UI and API)")
        # The secret itself is not printed: the Prefect UI asks operators for it, and
        # Orca's commands read it from the file themselves.
        console.print(
            "            operators sign in with prefect_auth_string from "
            f"{get_settings().sandbox_identity_file}"
        )
    for created in status.provisioned:
        console.print(f"  created   {created}")
    console.print(
        f"  instances {len(status.instances)} emulated EC2 instance(s) with an SSM agent"
        + ("" if status.instances else "; add some with `orca local up --instances N`")
    )
    for instance in status.instances:
        launched = "  (launched)" if instance.id in status.launched else ""
        console.print(f"            {_instance_line(instance)}{launched}")
    console.print("  The emulator keeps its state in memory: `orca local down` forgets it.")


@app.command("up")
@exits_on_error
def up(
    instances: Annotated[
        int | None,
        typer.Option(
            "--instances",
            help=f"How many emulated EC2 instances to run, 0-{MAX_INSTANCES} (default: as "
            f"many as before, else {DEFAULT_INSTANCES}); extra ones are terminated.",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Start the emulator (if needed), provision Orca's bucket and queue, run the fleet."""
    settings = get_settings()
    status = start_sandbox(settings, instances=instances)
    if json_output:
        print_json(_as_dict(status))
        return
    if status.already_running:
        note = " (it had lost its state and was re-provisioned)" if status.provisioned else ""
        console.print(f"The local sandbox is already running{note}.")
    else:
        if status.stale_record_found:
            console.print("Found a sandbox record whose process is gone; starting a new one.")
        console.print("The local sandbox is up.")
    _describe(status)


@app.command("down")
@exits_on_error
def down() -> None:
    """Stop the emulator (its in-memory state and its instances are lost)."""
    state = stop_sandbox(get_settings())
    if state is None:
        console.print("The local sandbox is not running; nothing to stop.")
    else:
        console.print(f"Stopped the local sandbox at {state.endpoint_url} (pid {state.pid}).")


@app.command("status")
@exits_on_error
def status(json_output: JsonOption = False) -> None:
    """Say whether the emulator runs, where, with which instances; re-provision if needed."""
    result = sandbox_status(get_settings())
    if json_output:
        print_json(_as_dict(result))
        return
    if not result.running:
        stale = " (its recorded process is gone)" if result.stale_record_found else ""
        console.print(f"The local sandbox is not running{stale}; start it with `orca local up`.")
        return
    console.print("The local sandbox is running.")
    _describe(result)


def _set_agent(instance_id: str, running: bool, json_output: bool) -> None:
    instance = set_agent(get_settings(), instance_id, running)
    if json_output:
        print_json(asdict(instance))
        return
    what = "started" if running else "stopped"
    console.print(f"The SSM agent of {instance.id} is {what}: {instance.ping_status}.")
    if not running:
        console.print(
            "  Commands sent to it wait, undelivered, until their delivery timeout; "
            f"`orca local agent start {instance.id}` brings it back."
        )


@agent_app.command("stop")
@exits_on_error
def agent_stop(instance_id: InstanceArgument, json_output: JsonOption = False) -> None:
    """Stop an instance's SSM agent: it goes ConnectionLost and takes no command."""
    _set_agent(instance_id, False, json_output)


@agent_app.command("start")
@exits_on_error
def agent_start(instance_id: InstanceArgument, json_output: JsonOption = False) -> None:
    """Start an instance's SSM agent again: it goes Online and takes commands."""
    _set_agent(instance_id, True, json_output)
