"""The `orca` command: one typer app with a group per concept, each imported when used.

Every command pays the start-up of what it imports, so the entry point imports only typer
and rich: a group's module (and with it the ORM, boto3 or Prefect) is imported when that
group runs, and `orca --help` lists the groups from ``GROUPS`` without importing any
(tests/cli/test_lazy_groups.py holds each summary equal to the group's own help).
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from orca_flows.cli.common import console, exits_on_error
from orca_flows.cli.serve import serve
from orca_flows.cli.ui import ui
from orca_flows.cli.worker import worker

__all__ = ["GROUPS", "app"]

# name -> (module with a typer ``app``, its help as `orca --help` lists it)
GROUPS: dict[str, tuple[str, str]] = {
    "local": ("orca_flows.cli.local", "The local sandbox: an AWS emulator on 127.0.0.1."),
    "user": ("orca_flows.cli.user", "Orca's users."),
    "link": ("orca_flows.cli.link", "Link AWS accounts (a role with an ExternalId)."),
    "pipeline": ("orca_flows.cli.pipeline", "Pipelines: a script and where and how it runs."),
    "run": ("orca_flows.cli.run", "Runs: start, stop, watch."),
    "db": ("orca_flows.cli.db", "Orca's database (SQLite locally, MySQL/RDS in production)."),
    "schedule": (
        "orca_flows.cli.schedule",
        "Schedules: Prefect deployments that submit a pipeline's runs (fired by `orca serve`).",
    ),
}


class _LazyGroups(TyperGroup):
    """The root group: the groups of ``GROUPS`` are loaded by name, when asked for."""

    _listing = False  # while the root's own help is drawn: summaries, no imports

    # Typer vendors its own click: its types are typer's, hence ``Any`` where they show.
    def list_commands(self, ctx: Any) -> list[str]:
        return [*GROUPS, *super().list_commands(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in GROUPS:
            return super().get_command(ctx, cmd_name)
        module, summary = GROUPS[cmd_name]
        if self._listing:
            return TyperGroup(name=cmd_name, help=summary)
        group = typer.main.get_group(importlib.import_module(module).app)
        group.name = cmd_name
        return group

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="orca",
    help="Orca: run your data pipelines on your own AWS account, orchestrated by Prefect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_LazyGroups,
)
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
    from rich.table import Table

    from orca_flows.local.demo import run_demo
    from orca_flows.settings import get_settings

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
