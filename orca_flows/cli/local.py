"""`orca local up | down | status`: the local AWS emulator."""

from __future__ import annotations

from dataclasses import asdict

import typer

from orca_flows.cli.common import JsonOption, console, exits_on_error, print_json
from orca_flows.local.sandbox import (
    SandboxStatus,
    sandbox_status,
    start_sandbox,
    stop_sandbox,
)
from orca_flows.settings import get_settings

app = typer.Typer(help="The local sandbox: an AWS emulator on 127.0.0.1.", no_args_is_help=True)


def _as_dict(status: SandboxStatus) -> dict[str, object]:
    return {
        "running": status.running,
        **(asdict(status.state) if status.state else {}),
        "provisioned": list(status.provisioned),
    }


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
    console.print("  The emulator keeps its state in memory: `orca local down` forgets it.")


@app.command("up")
@exits_on_error
def up(json_output: JsonOption = False) -> None:
    """Start the emulator (if needed) and provision Orca's bucket and FIFO queue."""
    settings = get_settings()
    status = start_sandbox(settings)
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
    """Stop the emulator (its in-memory state is lost)."""
    state = stop_sandbox(get_settings())
    if state is None:
        console.print("The local sandbox is not running; nothing to stop.")
    else:
        console.print(f"Stopped the local sandbox at {state.endpoint_url} (pid {state.pid}).")


@app.command("status")
@exits_on_error
def status(json_output: JsonOption = False) -> None:
    """Say whether the emulator runs, where, and re-provision it if it lost its state."""
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
