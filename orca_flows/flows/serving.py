"""`orca serve`: one Prefect Runner that fires the deployments of every Orca schedule.

The Runner is the machinery of ``flow.serve``: it polls Prefect for the scheduled flow runs
of the deployments it knows and runs each in a subprocess. `Runner.add_deployment` would
re-apply a deployment; Orca's deployments are written by `orca schedule` (and editable in
the Prefect UI), so this module only tells the Runner their ids, read from Orca's
database every ``refresh_seconds``: new schedules are served without a restart, and
deployments of another Orca database sharing the Prefect server are never run here.
"""

from __future__ import annotations

import asyncio
import socket
from uuid import UUID

import anyio
from prefect.exceptions import TerminationSignal
from prefect.runner import Runner
from prefect.utilities.annotations import NotSet
from sqlalchemy.engine import make_url

from orca_flows.errors import OrcaError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.deployments import check_prefect_reachable
from orca_flows.services.schedules import served_deployments
from orca_flows.settings import OrcaSettings

__all__ = ["serve_schedules"]

logger = get_logger("orca.serve")  # the name `orca serve` users see in its lines


def _watch(runner: Runner, deployments: dict[UUID, int], watched: set[UUID]) -> None:
    # A private Prefect API, on purpose: Prefect 3.9's Runner has no public way to serve a
    # deployment that exists already. Its public calls (add_deployment, add_flow, serve)
    # apply a RunnerDeployment first, an upsert that would overwrite Orca's definition (and
    # edits made in the Prefect UI) and replace its schedule, dropping the runs Prefect had
    # planned; the registration below is what they do after applying. pyproject pins
    # prefect<3.10 and tests/schedules/test_serve.py fires a schedule through it. Each
    # firing then runs like a worker's: `python -m prefect.engine` imports the module-path
    # entrypoint.
    for deployment_id in deployments.keys() - watched:
        runner._deployment_registry.register_deployment(
            deployment_id, f"schedule-{deployments[deployment_id]}"
        )
        watched.add(deployment_id)
        logger.info(
            "Serving deployment %s (Orca schedule %s).", deployment_id, deployments[deployment_id]
        )


async def _watch_schedules(runner: Runner, settings: OrcaSettings, refresh_seconds: float) -> None:
    watched: set[UUID] = set()
    while True:
        try:
            rows = await anyio.to_thread.run_sync(served_deployments, settings)
        except OrcaError as error:
            logger.warning("Cannot read Orca's schedules (%s); retrying.", error)
        else:
            _watch(runner, {UUID(deployment): schedule for deployment, schedule in rows}, watched)
        await anyio.sleep(refresh_seconds)


async def _serve(runner: Runner, settings: OrcaSettings, refresh_seconds: float) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(_watch_schedules, runner, settings, refresh_seconds)
        await runner.start()
        group.cancel_scope.cancel()


def serve_schedules(
    settings: OrcaSettings, *, limit: int | None = None, refresh_seconds: float = 10.0
) -> None:
    """Fire Orca's schedules until interrupted (SIGINT or SIGTERM).

    Stopping does not pause the schedules: their firings wait in Prefect as late runs, and
    a firing superseded by a later one is skipped when serving resumes.

    Args:
        settings: Orca's settings (the database whose schedules are served).
        limit: Most firings running at once (default PREFECT_RUNNER_PROCESS_LIMIT).
        refresh_seconds: How often Orca's database is read for new schedules.

    Raises:
        PrefectUnavailableError: No Prefect server is configured or it does not answer.
    """
    with prefect_api(settings):
        check_prefect_reachable("serve Orca's schedules")
        runner = Runner(
            name=f"orca-serve-{socket.gethostname()}",
            pause_on_shutdown=False,  # stopping a server must not pause users' schedules
            limit=NotSet if limit is None else limit,  # NotSet: PREFECT_RUNNER_PROCESS_LIMIT
        )
        logger.info(
            "Serving the schedules of %s; new ones are picked up within %g s. Stopping does "
            "not pause them.",
            make_url(settings.effective_database_url).render_as_string(hide_password=True),
            refresh_seconds,
        )
        try:
            asyncio.run(_serve(runner, settings, refresh_seconds))
        except (KeyboardInterrupt, TerminationSignal):
            logger.info("Stopped serving Orca's schedules.")
