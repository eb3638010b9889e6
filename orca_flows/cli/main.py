"""The `orca` command: one typer app with a group per concept."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from orca_flows.cli import db, link, local, pipeline, run, schedule, user
from orca_flows.cli.common import console, exits_on_error
from orca_flows.cli.serve import serve
from orca_flows.cli.ui import ui
from orca_flows.cli.worker import worker
from orca_flows.local.demo import run_demo
from orca_flows.settings import get_settings

app = typer.Typer(
    name="orca",
    help="Orca: run your data pipelines on your own AWS account, orchestrated by Prefect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(local.app, name="local")
app.add_typer(user.app, name="user")
app.add_typer(link.app, name="link")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(run.app, name="run")
app.add_typer(db.app, name="db")
app.add_typer(schedule.app, name="schedule")
app.command("worker")(worker)
app.command("serve")(serve)
app.command("ui")(ui)


@app.command("demo")
@exits_on_error
def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the local sandbox running afterwards.")
    ] = False,
) -> None:
    """Run the whole product on the local sandbox, end to end."""
    console.print("Starting the local sandbox (AWS emulator and Prefect server)...")
    report = run_demo(get_settings(), keep=keep, progress=console.print)
    setup = Table("step", "result", title="Set-up")
    for step, result in report.steps:
        setup.add_row(step, result)
    console.print(setup)
    results = Table("pipeline", "key / seq", "state", "exit", "seconds", "outputs", title="Runs")
    for shown in report.runs:
        colour = {"succeeded": "green", "failed": "red"}.get(shown.state, "yellow")
        results.add_row(
            shown.pipeline,
            f"{shown.ordering_key} / {shown.sequence}",
            f"[{colour}]{shown.state}[/]",
            "" if shown.exit_code is None else str(shown.exit_code),
            "" if shown.seconds is None else f"{shown.seconds:.1f}",
            ", ".join(uri.rsplit("/", 1)[1] for uri in shown.outputs),
        )
    console.print(results)
    if report.excerpt:
        uri, text = report.excerpt
        console.print(f"[bold]{uri}[/]", highlight=False)
        console.print("\n".join(text.splitlines()[:6]), highlight=False, markup=False)
    if report.stopped_sandbox:
        console.print(
            "Stopped the sandbox it started (use --keep to leave it and the Prefect UI running)."
        )
