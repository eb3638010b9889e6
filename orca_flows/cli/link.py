"""`orca link kit | create | update | check | list | remove`: linking AWS accounts."""

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
    err_console,
    exits_on_error,
    print_json,
)
from orca_flows.domain.states import CheckStatus
from orca_flows.services import links
from orca_flows.services.link_check import check_link
from orca_flows.services.link_creation import create_link, create_local_link
from orca_flows.services.link_kits import generate_kit

app = typer.Typer(help="Link AWS accounts (a role with an ExternalId).", no_args_is_help=True)

_MARK = {
    CheckStatus.PASSED: "[green]pass[/]",
    CheckStatus.FAILED: "[red]FAIL[/]",
    CheckStatus.UNVERIFIED: "[yellow]n/a[/]",
    CheckStatus.SKIPPED: "[dim]skip[/]",
}


@app.command("kit")
@exits_on_error
def kit(
    account: Annotated[
        str | None, typer.Option("--account", help="Your AWS account id (12 digits).")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="Your AWS region.")] = None,
    template_out: Annotated[
        Path | None, typer.Option("--template-out", help="Also write the template to this file.")
    ] = None,
    user: UserOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the CloudFormation template, quick-create link and an ExternalId issued to you."""
    settings, actor = acting(user)  # an ExternalId is issued to a user, so one must act
    result = generate_kit(
        settings, actor, region=region or settings.region, user_account_id=account
    )
    kit = result.kit
    if template_out is not None:
        template_out.write_text(kit.template_json)
    if json_output:
        print_json(
            {
                "external_id": kit.external_id,
                "orca_account_id": kit.orca_account_id,
                "region": kit.region,
                "stack_name": kit.stack_name,
                "role_arn": result.role_arn,
                "quick_create_url": kit.quick_create_url,
                "cli_commands": list(kit.cli_commands),
                "create_command": result.create_command,
                "template": kit.template,
            }
        )
        return
    console.print(f"[bold]ExternalId[/] {kit.external_id}", soft_wrap=True)
    console.print(
        f"  (issued to {actor.email}: only your links can use it, once; "
        "`orca link create` uses it by default.)",
        highlight=False,
    )
    console.print(
        f"\n[bold]1. Create the stack[/] in {kit.region}, trusting Orca's account "
        f"{kit.orca_account_id}. In the console:"
    )
    console.print(kit.quick_create_url, soft_wrap=True, highlight=False)
    console.print("   or with the AWS CLI (template: --template-out FILE or --json):")
    for command in kit.cli_commands:
        console.print(f"   {command}", soft_wrap=True, highlight=False)
    console.print("\n[bold]2. Link it[/]:")
    console.print(f"   {result.create_command}", soft_wrap=True, highlight=False)


@app.command("create")
@exits_on_error
def create(
    name: Annotated[str, typer.Argument(help="A name for the link, e.g. prod.")],
    role_arn: Annotated[
        str | None, typer.Option("--role-arn", help="The RoleArn output of the kit's stack.")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="The account's region.")] = None,
    external_id: Annotated[
        str | None,
        typer.Option(
            "--external-id",
            help="An ExternalId `orca link kit` issued to you (default: the newest unused one).",
        ),
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option("--bucket", help="The stack's bucket (default orca-ACCOUNT-REGION)."),
    ] = None,
    local: Annotated[bool, typer.Option("--local", help="Link the local sandbox.")] = False,
    user: UserOption = None,
) -> None:
    """Save a link: the role Orca assumes, or the local sandbox with --local."""
    if local == (role_arn is not None):
        raise typer.BadParameter("give either --role-arn ARN or --local", param_hint="--role-arn")
    settings, actor = acting(user)
    if local:
        link = create_local_link(settings, actor, name)
    else:
        link = create_link(
            settings,
            actor,
            name,
            role_arn=role_arn or "",
            region=region,
            external_id=external_id,
            bucket=bucket,
        )
    console.print(
        f"Linked {link.name!r}: {link.role_arn} ({link.region}); bucket {link.bucket}. "
        f"Verify it with `orca link check {link.name}`."
    )


@app.command("update")
@exits_on_error
def update(
    name: Annotated[str, typer.Argument(help="The link.")],
    external_id: Annotated[
        str | None,
        typer.Option(
            "--external-id",
            help="An unused ExternalId `orca link kit` issued to you, already in your stack "
            "(default: Orca issues a new one).",
        ),
    ] = None,
    user: UserOption = None,
) -> None:
    """Rotate a link to a newly issued ExternalId (on AWS, then update your stack with it)."""
    rotation = links.rotate_external_id(*acting(user), name, external_id)
    console.print(f"Link {name!r} now presents a new ExternalId; the old one is released.")
    if rotation.trust_updated:
        console.print("The local sandbox's role now trusts the new ExternalId only.")
    elif external_id is None:
        console.print(f"[bold]New ExternalId[/] {rotation.external_id}", soft_wrap=True)
        console.print(
            "Until your stack names it, Orca cannot assume the role: update the stack's "
            "ExternalId parameter (the same template, your stack's name if not orca-link):",
            highlight=False,
        )
        for command in rotation.stack_commands:
            console.print(f"   {command}", soft_wrap=True, highlight=False)
    console.print(f"Verify with `orca link check {name}`.", highlight=False)


@app.command("check")
@exits_on_error
def check(
    name: Annotated[str, typer.Argument(help="The link to verify.")],
    user: UserOption = None,
    json_output: JsonOption = False,
) -> None:
    """Verify a link step by step; exit code 1 if a step fails."""
    result = check_link(*acting(user), name)
    if json_output:
        steps = [dataclasses.asdict(step) for step in result.steps]
        print_json({"link": result.link, "passed": result.passed, "steps": steps})
    else:
        for step in result.steps:
            console.print(
                f"{_MARK[step.status]}  {step.name}: {step.detail}", soft_wrap=True, highlight=False
            )
            if step.fix:
                console.print(f"      fix: {step.fix}", soft_wrap=True, highlight=False)
        console.print("Link check passed." if result.passed else "Link check FAILED.")
    if not result.passed:
        raise typer.Exit(1)


@app.command("list")
@exits_on_error
def list_(user: UserOption = None, json_output: JsonOption = False) -> None:
    """List your links with their last check."""
    views = links.list_links(*acting(user))
    if json_output:
        print_json([dataclasses.asdict(view) for view in views])
        return
    if not views:
        console.print("No links yet: `orca link kit`, or `orca link create NAME --local`.")
        return
    table = Table("name", "account", "region", "bucket", "last check")
    for view in views:
        checked = (
            f"{view.last_check_status} at {view.last_check_at}" if view.last_check_at else "never"
        )
        # Why it failed (a check's step, or the worker's report of a link it cannot serve).
        failed = [s for s in view.last_check or () if s.status == CheckStatus.FAILED]
        if failed:
            checked += f"\n{failed[0].name}: {failed[0].detail}"
        table.add_row(view.name, str(view.account_id), view.region, str(view.bucket), checked)
    console.print(table)


@app.command("remove")
@exits_on_error
def remove(
    name: Annotated[str, typer.Argument(help="The link to remove.")], user: UserOption = None
) -> None:
    """Remove a link (refused while a pipeline uses it); your AWS resources stay."""
    removal = links.remove_link(*acting(user), name)
    console.print(
        f"Removed link {name!r}. The role, bucket and queue in your account stay: delete the "
        "CloudFormation stack to remove them."
    )
    if removal.leftover_blocks:
        err_console.print(
            "Warning: Prefect could not be reached to delete the link's block documents "
            f"{', '.join(removal.leftover_blocks)}; nothing uses them any more, delete them "
            "in the Prefect UI.",
            highlight=False,
        )
