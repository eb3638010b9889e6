"""What every CLI command shares: consoles, error handling, settings, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from orca_flows.errors import OrcaError

if TYPE_CHECKING:
    from orca_flows.domain.actor import Actor
    from orca_flows.settings import OrcaSettings

__all__ = [
    "JsonOption",
    "UserOption",
    "acting",
    "console",
    "err_console",
    "exits_on_error",
    "print_json",
]

console = Console(soft_wrap=True)  # sentences stay whole for grep and copy-paste
err_console = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


def exits_on_error(command: Callable[P, R]) -> Callable[P, R]:
    """Turn an ``OrcaError`` into its message on stderr and exit code 1 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except OrcaError as error:
            err_console.print(f"[bold red]Error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from error
        except Exception as error:
            if not _is_aws_error(error):
                raise
            # Retries (standard mode) are exhausted by the time this surfaces.
            err_console.print(
                f"[bold red]Error:[/] an AWS call failed after retries: {error}. Check the "
                "link (`orca link check NAME`) or, locally, that the sandbox runs "
                "(`orca local status`).",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from error

    return wrapper


def _is_aws_error(error: Exception) -> bool:
    # botocore is imported only by the commands that call AWS: if it is not loaded, the
    # error is not one of its own (and `orca --help` need not pay its import).
    exceptions = sys.modules.get("botocore.exceptions")
    return exceptions is not None and isinstance(
        error, (exceptions.BotoCoreError, exceptions.ClientError)
    )


def print_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout, plain (no colour), for scripts."""
    typer.echo(json.dumps(value, indent=2, default=str))


UserOption = Annotated[
    str | None,
    typer.Option("--user", help="Acting user's email (default: ORCA_USER)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def acting(user: str | None) -> tuple[OrcaSettings, Actor]:
    """The settings and the acting user named by ``--user`` (default ORCA_USER).

    Commands pass both to a use case, which opens its own unit(s) of work and Prefect API.

    Raises:
        InvalidInputError: No user was named.
        NotFoundError: No user has this email.
    """
    from orca_flows.services.users import resolve_actor
    from orca_flows.settings import get_settings

    settings = get_settings()
    return settings, resolve_actor(settings, user or settings.user)
