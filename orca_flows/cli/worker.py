"""`orca worker`: execute queued runs."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from orca_flows.cli.common import console, exits_on_error
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.settings import get_settings
from orca_flows.worker import Worker, WorkerOptions


@exits_on_error
def worker(
    link: Annotated[
        list[str] | None, typer.Option("--link", help="Serve only this link's queue (repeatable).")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Runs at once.")] = 4,
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", min=1, help="Exit after finishing this many runs.")
    ] = None,
    idle_exit: Annotated[
        float | None, typer.Option("--idle-exit", min=0, help="Exit after this many idle seconds.")
    ] = None,
) -> None:
    """Take runs off the linked accounts' queues and execute them, in order per key."""
    # Prefect configures logging at import; Orca's own logger gets a handler of its own.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    orca_logger = logging.getLogger("orca")
    orca_logger.addHandler(handler)
    orca_logger.setLevel(logging.INFO)
    settings = get_settings()
    options = WorkerOptions(tuple(link or ()), concurrency, max_runs, idle_exit)
    with prefect_api(settings):
        finished = asyncio.run(Worker(settings, options).run())
    console.print(f"Worker stopped after finishing {finished} run(s).")
