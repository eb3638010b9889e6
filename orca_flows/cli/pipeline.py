"""`orca pipeline add | list | show | remove | upload`: scripts and how they run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from orca_flows.cli.common import (
    JsonOption,
    UserOption,
    acting,
    console,
    exits_on_error,
    print_json,
)
from orca_flows.domain.rules import MAX_PIPELINE_TIMEOUT_SECONDS
from orca_flows.domain.views import PipelineView
from orca_flows.services import pipelines
from orca_flows.services.pipeline_removal import remove_pipeline

app = typer.Typer(help="Pipelines: a script and where and how it runs.", no_args_is_help=True)

ScriptArgument = Annotated[Path, typer.Argument(help="The script: a .sh or .py file.")]


def _json(view: PipelineView, *, versions: bool) -> dict[str, object]:
    """The view as `--json` prints it: `list` leaves the versions out."""
    data = dataclasses.asdict(view)
    if not versions:
        del data["versions"]
    return data


@app.command("add")
@exits_on_error
def add(
    name: Annotated[str, typer.Argument(help="Pipeline name: a-z, 0-9, - and _.")],
    script: ScriptArgument,
    link: Annotated[str, typer.Option("--link", help="The linked account it runs in.")],
    runner: Annotated[
        str | None,
        typer.Option(
            "--runner",
            help="ssm (EC2, the default) or local. local runs the script on this host: "
            "sandbox links only, unless ORCA_ALLOW_LOCAL_RUNNER=true.",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="i-… instance ids (comma-separated) or tag:KEY=VALUE (default on a sandbox "
            "link: tag:orca=enabled, its fleet).",
        ),
    ] = None,
    ordering_key: Annotated[
        str,
        typer.Option(
            "--ordering-key",
            help="pipeline, instance, user or any TEXT: runs sharing a key never overlap.",
        ),
    ] = "pipeline",
    timeout: Annotated[
        int,
        typer.Option(
            "--timeout",
            help="Seconds before the script is killed; at most "
            f"{MAX_PIPELINE_TIMEOUT_SECONDS} (SSM's 48 hours less the upload grace).",
        ),
    ] = 3600,
    retries: Annotated[int, typer.Option("--retries", help="Extra attempts after a failure.")] = 0,
    user: UserOption = None,
) -> None:
    """Add a pipeline and upload its script as version 1."""
    settings, actor = acting(user)
    pipeline = pipelines.add_pipeline(
        settings,
        actor,
        name,
        pipelines.read_script_file(script),
        link_name=link,
        runner=runner,
        target=target,
        ordering_key=ordering_key,
        timeout_seconds=timeout,
        retries=retries,
    )
    version = pipeline.versions[0]
    console.print(
        f"Added pipeline {pipeline.name!r} (runner {pipeline.runner}); script v{version.version} "
        f"sha256 {version.sha256}. Run it with `orca run start {pipeline.name}`."
    )


@app.command("upload")
@exits_on_error
def upload(
    name: Annotated[str, typer.Argument(help="The pipeline.")],
    script: ScriptArgument,
    user: UserOption = None,
) -> None:
    """Upload a new version of the pipeline's script (earlier versions stay)."""
    settings, actor = acting(user)
    version = pipelines.upload_version(settings, actor, name, pipelines.read_script_file(script))
    console.print(f"Uploaded {name!r} v{version.version}, sha256 {version.sha256}.")


@app.command("list")
@exits_on_error
def list_(user: UserOption = None, json_output: JsonOption = False) -> None:
    """List your pipelines."""
    views = pipelines.list_pipelines(*acting(user))
    if json_output:
        print_json([_json(view, versions=False) for view in views])
        return
    if not views:
        console.print("No pipelines yet: `orca pipeline add NAME SCRIPT --link LINK`.")
        return
    table = Table("name", "link", "runner", "target", "ordering key", "version")
    for v in views:
        table.add_row(
            v.name, v.link, v.runner, str(v.target), v.ordering_key, str(v.current_version)
        )
    console.print(table)


@app.command("show")
@exits_on_error
def show(
    name: Annotated[str, typer.Argument(help="The pipeline.")],
    user: UserOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a pipeline and its script versions."""
    view = pipelines.show_pipeline(*acting(user), name)
    if json_output:
        print_json(_json(view, versions=True))
        return
    for key, value in _json(view, versions=False).items():
        console.print(f"{key:16} {value}")
    for version in view.versions:
        console.print(
            f"  v{version.version}  {version.sha256}  {version.size_bytes} B  {version.s3_uri}"
        )


@app.command("remove")
@exits_on_error
def remove(
    name: Annotated[str, typer.Argument(help="The pipeline.")],
    force: Annotated[
        bool, typer.Option("--force", help="Stop its queued and running runs first.")
    ] = False,
    user: UserOption = None,
) -> None:
    """Remove a pipeline and its run history; its files in S3 stay."""
    kept = remove_pipeline(*acting(user), name, force=force)
    console.print(
        f"Removed pipeline {name!r}. Its scripts, logs and outputs stay in {kept}; "
        f"delete them with `aws s3 rm --recursive {kept}` if you no longer need them."
    )
