"""What every CLI command shares: consoles, error handling, settings, JSON output."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from orca_flows.errors import OrcaError

__all__ = ["console", "err_console", "exits_on_error", "print_json"]

console = Console()
err_console = Console(stderr=True)

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

    return wrapper


def print_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout, plain (no colour), for scripts."""
    typer.echo(json.dumps(value, indent=2, default=str))
