"""The Prefect work pool that holds Orca's schedule deployments, read and written in public API.

`orca serve` runs Prefect's own process worker on this pool: each firing of a schedule is a
flow run of its deployment, which the worker starts as `python -m prefect.engine` with the
module-path entrypoint of Orca's submit flow (no pull steps: Orca is installed where the
worker runs). The pool is per Orca database (``ORCA_SCHEDULE_WORK_POOL``), so two Orca
installations sharing one Prefect server never run each other's firings.
"""

from __future__ import annotations

from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.workers.process import ProcessWorker

from orca_flows.errors import InvalidStateError
from orca_flows.prefect_adapter.api import prefect_client

__all__ = ["POOL_TYPE", "ensure_work_pool", "route_to_pool"]

POOL_TYPE = ProcessWorker.type  # "process"


def ensure_work_pool(client: SyncPrefectClient, name: str) -> None:
    """Create the process work pool ``name`` unless it exists.

    Raises:
        InvalidStateError: A pool of that name exists with another type (its workers could
            not run Orca's firings).
        PrefectUnavailableError: Raised by the caller's ``prefect_client`` on an outage.
    """
    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        create = WorkPoolCreate(
            name=name,
            type=POOL_TYPE,
            base_job_template=ProcessWorker.get_default_base_job_template(),
            description="Orca's schedule deployments; `orca serve` runs their firings.",
        )
        try:
            client.create_work_pool(create)
        except ObjectAlreadyExists:
            pass  # another `orca schedule set` or `orca serve` made it meanwhile
        return
    if pool.type != POOL_TYPE:
        raise InvalidStateError(
            f"Prefect work pool {name!r} is of type {pool.type!r}, and Orca's schedules need "
            f"a {POOL_TYPE!r} pool: set ORCA_SCHEDULE_WORK_POOL to another name (or delete "
            "that pool)."
        )


def route_to_pool(deployment_id: str, pool: str) -> bool:
    """Put a schedule's deployment in ``pool`` if it is not there (one written before pools).

    Prefect then replaces the runs it had planned for the deployment with runs in the pool.

    Returns:
        True when the deployment was moved; False when it was there or no longer exists.

    Raises:
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    with prefect_client(f"move deployment {deployment_id} into work pool {pool!r}") as client:
        try:
            deployment = client.read_deployment(UUID(deployment_id))
            if deployment.work_pool_name == pool:
                return False
            client.update_deployment(UUID(deployment_id), DeploymentUpdate(work_pool_name=pool))
        except ObjectNotFound:
            return False
    return True
