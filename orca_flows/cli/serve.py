"""`orca serve`: fire Orca's schedules (their Prefect deployments) until stopped."""

from __future__ import annotations

from typing import Annotated

import typer

from orca_flows.cli.common import exits_on_error
from orca_flows.flows.serving import serve_schedules
from orca_flows.logs import configure_logging
from orca_flows.settings import get_settings

__all__ = ["serve"]


@exits_on_error
def serve(
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, help="Most firings at once (default PREFECT_RUNNER_PROCESS_LIMIT)."
        ),
    ] = None,
    refresh: Annotated[
        float,
        typer.Option("--refresh", min=1.0, help="Seconds between looks for new schedules."),
    ] = 10.0,
) -> None:
    """Serve Orca's Prefect deployments: every schedule fires while this runs (Ctrl-C stops)."""
    configure_logging()
    serve_schedules(get_settings(), limit=limit, refresh_seconds=refresh)
