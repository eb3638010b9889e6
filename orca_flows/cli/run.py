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
    console,
    err_console,
    exits_on_error,
    print_json,
    user_session,
)
from orca_flows.domain.states import FINISHED_RUN_STATES, RunState
from orca_flows.services import runs
from orca_flows.prefect_adapter.api import prefect_api

app = typer.Typer(help="Runs: start, stop, watch.", no_args_is_help=True)

RunIdArgument = Annotated[str, typer.Argument(help="The run id (from `orca run start` or `list`).")]


@app.command("start")
@exits_on_error
def start(
    pipeline: Annotated[str, typer.Argument(help="The pipeline to run.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the end; exit 0 only if it succeeded.")] = False,
    user: UserOption = None,
) -> None:
    """Queue a run; prints its id."""
    with user_session(user) as (_, owner, settings):
        owner_id = owner.id
    # submit_run commits on its own (row first, then the message): no session held here.
    with prefect_api(settings):
        submitted = runs.submit_run(settings, owner_id, pipeline, requested_by=f"user:{owner_id}")
    typer.echo(submitted.run_id)
    if not submitted.message_sent:
        err_console.print("The run is queued; its queue message will be sent by a worker's sweeper.")
    if wait:
        state = _wait(submitted.run_id, user)
        raise typer.Exit(0 if state == RunState.SUCCEEDED else 1)


def _wait(run_id: str, user: str | None) -> str:
    """Poll the run until it finishes, showing each state change on stderr."""
    last = None
    while True:
        with user_session(user) as (session, owner, _):
            run = runs.get_run(session, owner, run_id)
            state, error = run.state, run.error_summary
        if state != last:
            err_console.print(f"{time.strftime('%H:%M:%S')} {run_id[:8]} {state}")
            last = state
        if state in FINISHED_RUN_STATES:
            if error and state != RunState.SUCCEEDED:
                err_console.print(f"  {error}")
            return state
        time.sleep(0.5)


@app.command("stop")
@exits_on_error
def stop(run_id: RunIdArgument, user: UserOption = None) -> None:
    """Stop a run: a queued one never starts, a running one is killed with its children."""
    with user_session(user) as (session, owner, _):
        was = runs.stop_run(session, owner, run_id)
    console.print(f"Run {run_id} was {was}; it is now cancelled.")


@app.command("list")
@exits_on_error
def list_(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline's runs.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only runs in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (newest first).")] = 50,
    user: UserOption = None,
    json_output: JsonOption = False,
) -> None:
    """List your runs, newest first."""
    with user_session(user) as (session, owner, _):
        found = runs.list_runs(session, owner, pipeline=pipeline, state=state, limit=limit)
        views = [runs.view_run(run, with_outputs=json_output) for run in found]
    if json_output:
        print_json([dataclasses.asdict(view) for view in views])
        return
    table = Table("id", "pipeline", "state", "key/seq", "attempt", "exit", "requested")
    for v in views:
        table.add_row(v.id, v.pipeline, v.state, f"{v.ordering_key}/{v.sequence}", str(v.attempt), str(v.exit_code if v.exit_code is not None else ""), v.requested_at[:19])
    console.print(table)


@app.command("show")
@exits_on_error
def show(run_id: RunIdArgument, user: UserOption = None, json_output: JsonOption = False) -> None:
    """Show one run: state, times, where it ran, its log and outputs."""
    with user_session(user) as (session, owner, _):
        view = runs.view_run(runs.get_run(session, owner, run_id))
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
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")] = False,
    user: UserOption = None,
) -> None:
    """Print the run's log (stdout and stderr together)."""
    offset = 0
    while True:
        with user_session(user) as (session, owner, _):
            run = runs.get_run(session, owner, run_id)
            chunk = runs.read_log(run, start=offset)
            finished = run.state in FINISHED_RUN_STATES
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        offset += len(chunk)
        if not follow or finished:
            if follow:  # the final log may have landed after the last read
                with user_session(user) as (session, owner, _):
                    rest = runs.read_log(runs.get_run(session, owner, run_id), start=offset)
                sys.stdout.buffer.write(rest)
            return
        time.sleep(1)
