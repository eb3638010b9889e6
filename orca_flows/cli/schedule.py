"""`orca schedule set | list | pause | resume | remove`: pipelines that run by themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from orca_flows.cli.common import (
    JsonOption,
    UserOption,
    console,
    exits_on_error,
    print_json,
    user_session,
)
from orca_flows.services import schedules
from orca_flows.services.schedules import ScheduleView
from orca_flows.settings import OrcaSettings

app = typer.Typer(
    help="Schedules: Prefect deployments that submit a pipeline's runs (fired by `orca serve`).",
    no_args_is_help=True,
)

PipelineArgument = Annotated[str, typer.Argument(help="The pipeline.")]


def _acting_user(user: str | None) -> tuple[int, OrcaSettings]:
    # Only the id: each schedule service owns its transaction, so that a Prefect write
    # and the Schedule row commit or fail together.
    with user_session(user) as (_, owner, settings):
        return owner.id, settings


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
        raise typer.BadParameter(
            "give either --cron EXPR or --interval SECONDS", param_hint="--cron"
        )
    owner_id, settings = _acting_user(user)
    view = schedules.set_schedule(
        settings, owner_id, pipeline, cron=cron, interval_seconds=interval, timezone=timezone
    )
    if json_output:
        print_json(view.as_dict())
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
    with user_session(user) as (session, owner, _):
        views = schedules.list_schedules(session, owner)
    if json_output:
        print_json([view.as_dict() for view in views])
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
    owner_id, settings = _acting_user(user)
    schedules.pause_schedule(settings, owner_id, pipeline)
    console.print(
        f"Paused the schedule of {pipeline!r}; `orca schedule resume {pipeline}` restarts it."
    )


@app.command("resume")
@exits_on_error
def resume(pipeline: PipelineArgument, user: UserOption = None) -> None:
    """Let a paused schedule fire again."""
    owner_id, settings = _acting_user(user)
    view = schedules.resume_schedule(settings, owner_id, pipeline)
    console.print(f"Resumed the schedule of {pipeline!r}; next: {_next(view)}.", highlight=False)


@app.command("remove")
@exits_on_error
def remove(pipeline: PipelineArgument, user: UserOption = None) -> None:
    """Remove a pipeline's schedule and its Prefect deployment."""
    owner_id, settings = _acting_user(user)
    schedules.remove_schedule(settings, owner_id, pipeline)
    console.print(f"Removed the schedule of {pipeline!r} and its Prefect deployment.")
