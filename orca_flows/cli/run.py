"""`orca run start | stop | list | show | logs`: runs of pipelines."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Annotated

import typer
from rich.table import Table

from orca_flows.cli.common import (
    JsonOption,
    UserOption,
    acting,
    console,
    err_console,
    exits_on_error,
    print_json,
)
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import RunState
from orca_flows.services import run_views
from orca_flows.settings import OrcaSettings

app = typer.Typer(help="Runs: start, stop, watch.", no_args_is_help=True)

RunIdArgument = Annotated[str, typer.Argument(help="The run id (from `orca run start` or `list`).")]


@app.command("start")
@exits_on_error
def start(
    pipeline: Annotated[str, typer.Argument(help="The pipeline to run.")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the end; exit 0 only if it succeeded.")
    ] = False,
    user: UserOption = None,
) -> None:
    """Queue a run; prints its id."""
    from orca_flows.services import runs  # AWS and Prefect: only when used

    settings, actor = acting(user)
    submitted = runs.submit_run(settings, actor, pipeline, requested_by=f"user:{actor.user_id}")
    typer.echo(submitted.run_id)
    if not submitted.message_sent:
        err_console.print(
            "The run is queued; its queue message will be sent by a worker's sweeper."
        )
    if wait:
        state = _wait(settings, actor, submitted.run_id)
        raise typer.Exit(0 if state == RunState.SUCCEEDED else 1)


def _wait(settings: OrcaSettings, actor: Actor, run_id: str) -> RunState:
    """Poll the run until it finishes, showing each state change on stderr."""
    from orca_flows.services import runs  # AWS and Prefect: only when used

    last = None
    while True:
        view = runs.view_run(settings, actor, run_id, with_outputs=False)
        if view.state != last:
            err_console.print(f"{time.strftime('%H:%M:%S')} {run_id[:8]} {view.state}")
            last = view.state
        if view.finished:
            if view.error and view.state != RunState.SUCCEEDED:
                err_console.print(f"  {view.error}")
            return view.state
        time.sleep(0.5)


@app.command("stop")
@exits_on_error
def stop(run_id: RunIdArgument, user: UserOption = None) -> None:
    """Stop a run: a queued one never starts, a running one is killed with its children.

    A running run is ``cancelling`` until its process is confirmed dead, then
    ``cancelled``; the next run of its ordering key waits until then.
    """
    from orca_flows.services import runs  # AWS and Prefect: only when used

    settings, actor = acting(user)
    was = runs.stop_run(settings, actor, run_id)
    view = runs.view_run(settings, actor, run_id, with_outputs=False)
    if view.state == RunState.CANCELLED:
        console.print(f"Run {run_id} was {was}; it is now cancelled.")
    elif view.state == RunState.CANCELLING:
        console.print(
            f"Run {run_id} was {was}; it is now cancelling: its process is being killed, and "
            "it becomes cancelled (releasing the next run of its key) once the process is "
            f"confirmed dead. Follow it with `orca run show {run_id}`."
        )
        if view.error:
            console.print(view.error)
    else:  # the run finished between the stop and this look
        console.print(f"Run {run_id} was {was}; it has finished ({view.state}).")


@app.command("list")
@exits_on_error
def list_(
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Only this pipeline's runs.")
    ] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only runs in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (newest first).")] = 50,
    user: UserOption = None,
    json_output: JsonOption = False,
) -> None:
    """List your runs, newest first."""
    # Rows only: no AWS, no Prefect (one listing per run would load the link's access for
    # each); `orca run show RUN_ID --json` lists a run's outputs.
    views = run_views.list_runs(*acting(user), pipeline=pipeline, state=state, limit=limit)
    if json_output:
        print_json([{k: v for k, v in dataclasses.asdict(view).items() if k != "outputs"}
                    for view in views])  # fmt: skip
        return
    table = Table("id", "pipeline", "state", "key/seq", "attempt", "exit", "requested")
    for v in views:
        table.add_row(
            v.id,
            v.pipeline,
            v.state,
            f"{v.ordering_key}/{v.sequence}",
            str(v.attempt),
            str(v.exit_code if v.exit_code is not None else ""),
            v.requested_at[:19],
        )
    console.print(table)


@app.command("show")
@exits_on_error
def show(run_id: RunIdArgument, user: UserOption = None, json_output: JsonOption = False) -> None:
    """Show one run: state, times, where it ran, its log and outputs."""
    from orca_flows.services import runs  # AWS and Prefect: only when used

    view = runs.view_run(*acting(user), run_id)
    if json_output:
        print_json(dataclasses.asdict(view))
        return
    for key, value in dataclasses.asdict(view).items():
        if key != "outputs":
            console.print(f"{key:15} {value}", highlight=False)
    for uri in view.outputs:
        console.print(f"output          {uri}", highlight=False)


@app.command("logs")
@exits_on_error
def logs(
    run_id: RunIdArgument,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")
    ] = False,
    user: UserOption = None,
) -> None:
    """Print the run's log (stdout and stderr together)."""
    from orca_flows.services import runs  # AWS and Prefect: only when used

    settings, actor = acting(user)
    offset = 0
    while True:
        chunk = runs.read_log(settings, actor, run_id, start=offset)
        sys.stdout.buffer.write(chunk.data)
        sys.stdout.flush()
        offset += len(chunk.data)
        if not follow or chunk.finished:
            if follow:  # the final log may have landed after the last read
                sys.stdout.buffer.write(runs.read_log(settings, actor, run_id, start=offset).data)
            return
        time.sleep(1)
