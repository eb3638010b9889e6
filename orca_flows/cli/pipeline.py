"""`orca pipeline add | list | show | remove | upload`: scripts and how they run."""

from __future__ import annotations

from pathlib import Path
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
from orca_flows.db.models import Pipeline
from orca_flows.services import pipelines

app = typer.Typer(help="Pipelines: a script and where and how it runs.", no_args_is_help=True)

ScriptArgument = Annotated[Path, typer.Argument(help="The script: a .sh or .py file.")]


def _describe(pipeline: Pipeline, versions: list | None = None) -> dict[str, object]:
    data: dict[str, object] = {
        "name": pipeline.name,
        "link": pipeline.link.name,
        "runner": pipeline.runner,
        "target": pipeline.target,
        "ordering_key": pipeline.ordering_key,
        "timeout_seconds": pipeline.timeout_seconds,
        "retries": pipeline.retries,
        "current_version": pipeline.current_version,
        "created_at": pipeline.created_at.isoformat(),
    }
    if versions is not None:
        data["versions"] = [
            {
                "version": v.version,
                "sha256": v.sha256,
                "size_bytes": v.size_bytes,
                "s3_uri": f"s3://{pipeline.link.bucket}/{v.s3_key}",
                "uploaded_at": v.uploaded_at.isoformat(),
            }
            for v in versions
        ]
    return data


@app.command("add")
@exits_on_error
def add(
    name: Annotated[str, typer.Argument(help="Pipeline name: a-z, 0-9, - and _.")],
    script: ScriptArgument,
    link: Annotated[str, typer.Option("--link", help="The linked account it runs in.")],
    runner: Annotated[
        str | None, typer.Option("--runner", help="ssm (EC2) or local (default local for a sandbox link).")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="i-… instance ids (comma-separated) or tag:KEY=VALUE.")
    ] = None,
    ordering_key: Annotated[
        str, typer.Option("--ordering-key", help="pipeline, instance, user or any TEXT: runs sharing a key never overlap.")
    ] = "pipeline",
    timeout: Annotated[int, typer.Option("--timeout", help="Seconds before the script is killed.")] = 3600,
    retries: Annotated[int, typer.Option("--retries", help="Extra attempts after a failure.")] = 0,
    user: UserOption = None,
) -> None:
    """Add a pipeline and upload its script as version 1."""
    with user_session(user) as (session, owner, settings):
        pipeline, version = pipelines.add_pipeline(
            session, settings, owner, name, pipelines.read_script_file(script),
            link_name=link, runner=runner, target=target, ordering_key=ordering_key,
            timeout_seconds=timeout, retries=retries,
        )
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
    with user_session(user) as (session, owner, settings):
        version = pipelines.upload_version(
            session, settings, owner, name, pipelines.read_script_file(script)
        )
        console.print(f"Uploaded {name!r} v{version.version}, sha256 {version.sha256}.")


@app.command("list")
@exits_on_error
def list_(user: UserOption = None, json_output: JsonOption = False) -> None:
    """List your pipelines."""
    with user_session(user) as (session, owner, _):
        rows = [_describe(p) for p in pipelines.list_pipelines(session, owner)]
    if json_output:
        print_json(rows)
        return
    if not rows:
        console.print("No pipelines yet: `orca pipeline add NAME SCRIPT --link LINK`.")
        return
    table = Table("name", "link", "runner", "target", "ordering key", "version")
    for row in rows:
        table.add_row(*(str(row[k]) for k in ("name", "link", "runner", "target", "ordering_key", "current_version")))
    console.print(table)


@app.command("show")
@exits_on_error
def show(
    name: Annotated[str, typer.Argument(help="The pipeline.")],
    user: UserOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a pipeline and its script versions."""
    with user_session(user) as (session, owner, _):
        pipeline = pipelines.get_pipeline(session, owner, name)
        data = _describe(pipeline, list(pipelines.versions(session, pipeline)))
    if json_output:
        print_json(data)
        return
    for key, value in data.items():
        if key != "versions":
            console.print(f"{key:16} {value}")
    for version in data["versions"]:  # type: ignore[union-attr]
        console.print(f"  v{version['version']}  {version['sha256']}  {version['size_bytes']} B  {version['s3_uri']}")


@app.command("remove")
@exits_on_error
def remove(
    name: Annotated[str, typer.Argument(help="The pipeline.")],
    force: Annotated[bool, typer.Option("--force", help="Stop its queued and running runs first.")] = False,
    user: UserOption = None,
) -> None:
    """Remove a pipeline and its run history; its files in S3 stay."""
    with user_session(user) as (session, owner, _):
        kept = pipelines.remove_pipeline(session, owner, name, force=force)
    console.print(
        f"Removed pipeline {name!r}. Its scripts, logs and outputs stay in {kept}; "
        f"delete them with `aws s3 rm --recursive {kept}` if you no longer need them."
    )
