"""`orca schedule set | list | pause | resume | remove`: pipelines that run by themselves."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
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
from orca_flows.domain.views import ScheduleView
from orca_flows.services import schedules

app = typer.Typer(
    help="Schedules: Prefect deployments that submit a pipeline's runs (fired by `orca serve`).",
    no_args_is_help=True,
)

PipelineArgument = Annotated[str, typer.Argument(help="The pipeline.")]


def _timing(view: ScheduleView) -> str:
    every = f"every {view.interval_seconds} s" if view.interval_seconds else f"cron '{view.cron}'"
    return f"{every} ({view.timezone})"


def _next(view: ScheduleView) -> str:
    if not view.active:
        return "paused"
    if not view.next_fire_times:
        return "none"
    return datetime.fromisoformat(view.next_fire_times[0]).strftime("%Y-%m-%d %H:%M:%S %Z")


@app.command("set")
@exits_on_error
def set_(
    pipeline: PipelineArgument,
    cron: Annotated[
        str | None,
        typer.Option("--cron", help="5-field cron expression, e.g. '0 3 * * *' (03:00 daily)."),
    ] = None,
    interval: Annotated[
        int | None, typer.Option("--interval", help="Seconds between runs (at least 60).")
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA time zone of the cron expression.")
    ] = "UTC",
    user: UserOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create or change a pipeline's schedule (a paused one stays paused)."""
    if (cron is None) == (interval is None):
        # A usage error (exit 2) told as one sentence, not typer's box, like every refusal.
        err_console.print(
            "[bold red]Error:[/] give either --cron EXPR or --interval SECONDS, not "
            f"{'both' if cron else 'neither'}: e.g. `orca schedule set {pipeline} --cron "
            "'0 3 * * *'` (03:00 daily).",
            highlight=False,
        )
        raise typer.Exit(2)
    settings, actor = acting(user)
    view = schedules.set_schedule(
        settings, actor, pipeline, cron=cron, interval_seconds=interval, timezone=timezone
    )
    if json_output:
        print_json(asdict(view))
        return
    console.print(
        f"Scheduled {pipeline!r} {_timing(view)}; next: {_next(view)}. It fires while "
        f"`orca serve` runs (Prefect deployment {view.deployment_id}).",
        highlight=False,
    )


@app.command("list")
@exits_on_error
def list_(user: UserOption = None, json_output: JsonOption = False) -> None:
    """List your schedules with their next fire times."""
    views = schedules.list_schedules(*acting(user))
    if json_output:
        print_json([asdict(view) for view in views])
        return
    if not views:
        console.print("No schedules yet: `orca schedule set PIPELINE --cron EXPR` (or --interval).")
        return
    table = Table("pipeline", "when", "next firing")
    for view in views:
        table.add_row(view.pipeline, _timing(view), _next(view))
    console.print(table)


@app.command("pause")
@exits_on_error
def pause(pipeline: PipelineArgument, user: UserOption = None) -> None:
    """Stop a pipeline's schedule firing (runs already submitted are not touched)."""
    schedules.pause_schedule(*acting(user), pipeline)
    console.print(
        f"Paused the schedule of {pipeline!r}; `orca schedule resume {pipeline}` restarts it."
    )


@app.command("resume")
@exits_on_error
def resume(pipeline: PipelineArgument, user: UserOption = None) -> None:
    """Let a paused schedule fire again."""
    view = schedules.resume_schedule(*acting(user), pipeline)
    console.print(f"Resumed the schedule of {pipeline!r}; next: {_next(view)}.", highlight=False)


@app.command("remove")
@exits_on_error
def remove(pipeline: PipelineArgument, user: UserOption = None) -> None:
    """Remove a pipeline's schedule and its Prefect deployment."""
    schedules.remove_schedule(*acting(user), pipeline)
    console.print(f"Removed the schedule of {pipeline!r} and its Prefect deployment.")
