"""`orca user add`: create a user (a tenant, or with `--operator` one who runs Orca)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from orca_flows.cli.common import console, exits_on_error
from orca_flows.services.users import add_user
from orca_flows.settings import get_settings

app = typer.Typer(help="Orca's users.", no_args_is_help=True)


@app.command("add")
@exits_on_error
def add(
    email: Annotated[str, typer.Argument(help="The user's email address.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    operator: Annotated[
        bool,
        typer.Option(
            "--operator",
            help="The user runs this Orca: the web app shows them links into Prefect "
            "(which holds every user's credentials and logs). Never for tenants.",
        ),
    ] = False,
) -> None:
    """Add a user; the password comes from stdin (--password-stdin) or a prompt."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = add_user(get_settings(), email, password, operator=operator)
    role = ", an operator" if user.is_operator else ""
    console.print(f"Added user {user.email} (id {user.user_id}{role}).")
