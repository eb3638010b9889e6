"""`orca serve`: fire Orca's schedules (their Prefect deployments) until stopped."""

from __future__ import annotations

from typing import Annotated

import typer

from orca_flows.cli.common import exits_on_error

__all__ = ["serve"]


@exits_on_error
def serve(
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Most firings running at once (default 10)."),
    ] = None,
    refresh: Annotated[
        float,
        typer.Option(
            "--refresh",
            min=1.0,
            help="Seconds between looks for schedules written before work pools, to move.",
        ),
    ] = 10.0,
) -> None:
    """Fire Orca's schedules: a Prefect process worker on ORCA_SCHEDULE_WORK_POOL (Ctrl-C stops)."""
    # Imported here: Prefect's worker is only this command's start-up.
    from orca_flows.flows.serving import serve_schedules
    from orca_flows.logs import configure_logging
    from orca_flows.settings import get_settings

    configure_logging()
    serve_schedules(get_settings(), limit=limit, refresh_seconds=refresh)
