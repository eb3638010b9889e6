"""`orca worker`: execute queued runs."""

from __future__ import annotations

from typing import Annotated

import typer

from orca_flows.cli.common import console, exits_on_error


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
    # Imported here: `orca --help` and every other command skip the worker's start-up.
    from orca_flows.logs import configure_logging
    from orca_flows.settings import get_settings
    from orca_flows.worker import WorkerOptions, run_worker

    configure_logging()
    options = WorkerOptions(tuple(link or ()), concurrency, max_runs, idle_exit)
    finished = run_worker(get_settings(), options)
    console.print(f"Worker stopped after finishing {finished} run(s).")
