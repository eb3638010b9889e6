"""`orca serve`: Prefect's process worker on the work pool of Orca's schedule deployments.

Every schedule's deployment sits in the pool ``ORCA_SCHEDULE_WORK_POOL`` (written there by
`orca schedule set`); each firing is a flow run of it, which the worker runs in a
subprocess (`python -m prefect.engine` importing the submit flow's module-path
entrypoint). Only public Prefect API: ``ProcessWorker`` as `prefect worker start` runs it.
Every ``refresh_seconds`` Orca's database is read for its schedules, and a deployment
written before pools existed is moved into the pool, so an upgrade needs no
`orca schedule set` again.
"""

from __future__ import annotations

import signal
import socket

import anyio
from prefect.workers.process import ProcessWorker
from sqlalchemy.engine import make_url

from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api, prefect_client
from orca_flows.prefect_adapter.deployments import check_prefect_reachable
from orca_flows.prefect_adapter.work_pools import ensure_work_pool, route_to_pool
from orca_flows.services.schedules import served_deployments
from orca_flows.settings import OrcaSettings

__all__ = ["DEFAULT_LIMIT", "serve_schedules"]

logger = get_logger("orca.serve")  # the name `orca serve` users see in its lines

# Most firings at once: each is a short Python process that only queues a run.
DEFAULT_LIMIT = 10


def _route(settings: OrcaSettings, pool: str, seen: set[str]) -> None:
    """Move the schedules' deployments not seen yet into the pool (a blocking call).

    One deployment that cannot be moved (refused, deleted meanwhile) is logged and tried
    again at the next refresh; it never stops the others, nor the worker.
    """
    for deployment_id, schedule_id in served_deployments(settings):
        if deployment_id in seen:
            continue
        try:
            moved = route_to_pool(deployment_id, pool)
        except Exception as error:  # noqa: BLE001 - the worker must keep firing the rest
            logger.warning("Deployment %s not moved into %r yet (%s).", deployment_id, pool, error)
            continue
        if moved:
            logger.info(
                "Moved deployment %s (Orca schedule %s) into work pool %r.",
                deployment_id,
                schedule_id,
                pool,
            )
        seen.add(deployment_id)


async def _watch_schedules(settings: OrcaSettings, pool: str, refresh_seconds: float) -> None:
    seen: set[str] = set()
    while True:
        try:
            await anyio.to_thread.run_sync(_route, settings, pool, seen)
        except Exception as error:  # noqa: BLE001 - a database blip must not stop the worker
            logger.warning("Cannot read Orca's schedules (%s); retrying.", error)
        await anyio.sleep(refresh_seconds)


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    # SIGTERM (systemd, a supervisor) ends serving as Ctrl-C does: the worker deregisters.
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _serve(settings: OrcaSettings, pool: str, limit: int, refresh_seconds: float) -> None:
    worker = ProcessWorker(
        work_pool_name=pool,
        name=f"orca-serve-{socket.gethostname()}",
        limit=limit,
        create_pool_if_not_found=False,  # made by ensure_work_pool, with its type checked
    )
    async with anyio.create_task_group() as group:  # start() enters the worker itself
        group.start_soon(_watch_schedules, settings, pool, refresh_seconds)
        group.start_soon(_stop_on_signal, group.cancel_scope)
        await worker.start()
        group.cancel_scope.cancel()


def serve_schedules(
    settings: OrcaSettings, *, limit: int | None = None, refresh_seconds: float = 10.0
) -> None:
    """Fire Orca's schedules until interrupted (SIGINT or SIGTERM).

    Stopping does not pause the schedules: their firings wait in Prefect as late runs, and
    a firing superseded by a later one is skipped when serving resumes.

    Args:
        settings: Orca's settings (the database whose schedules are served, and its pool).
        limit: Most firings running at once (default ``DEFAULT_LIMIT``).
        refresh_seconds: How often Orca's database is read for deployments to move.

    Raises:
        PrefectUnavailableError: No Prefect server is configured or it does not answer.
        InvalidStateError: The work pool exists with a type other than ``process``.
    """
    pool = settings.schedule_work_pool
    with prefect_api(settings):
        check_prefect_reachable("serve Orca's schedules")
        with prefect_client(f"create work pool {pool!r}") as client:
            ensure_work_pool(client, pool)
        logger.info(
            "Serving the schedules of %s from Prefect work pool %r; stopping does not pause them.",
            make_url(settings.effective_database_url).render_as_string(hide_password=True),
            pool,
        )
        anyio.run(_serve, settings, pool, limit or DEFAULT_LIMIT, refresh_seconds)
        logger.info("Stopped serving Orca's schedules.")
