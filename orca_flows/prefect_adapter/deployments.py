"""The Prefect side of a schedule: a deployment of Orca's submit flow, written through the API."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.exceptions import ObjectNotFound
from prefect.utilities.callables import parameter_schema

from orca_flows.errors import PrefectUnavailableError
from orca_flows.prefect_adapter.api import (
    configured_prefect_api_url,
    prefect_client,
    prefect_unavailable,
)
from orca_flows.prefect_adapter.work_pools import ensure_work_pool

__all__ = [
    "SUBMIT_ENTRYPOINT",
    "SUBMIT_FLOW_NAME",
    "DeploymentSpec",
    "apply_deployment",
    "check_prefect_reachable",
    "delete_deployment",
    "deployment_name",
    "pause_deployment",
    "prefect_schedule",
    "submit_parameter_schema",
    "submit_parameters",
]

# The submit flow's name and module-path entrypoint: importable wherever Orca is installed,
# so the process worker of `orca serve` (or any other) loads the flow without a working
# directory. The flow module imports these names; this adapter never imports the flow
# (flows sit above the use cases that call this module).
SUBMIT_FLOW_NAME = "orca-submit-run"
SUBMIT_ENTRYPOINT = "orca_flows.flows.submit.submit_pipeline_run"
_SCHEDULE_SLUG = "orca"


@dataclass(frozen=True)
class DeploymentSpec:
    """What a schedule's deployment says: which pipeline it submits, when, and whether."""

    schedule_id: int
    owner_id: int
    pipeline: str
    cron: str | None
    interval_seconds: int | None
    timezone: str
    anchor: datetime
    active: bool
    work_pool: str

    @property
    def timing(self) -> str:
        """``every 60 s`` or ``cron 0 3 * * *``, with the time zone."""
        when = f"every {self.interval_seconds} s" if self.interval_seconds else f"cron {self.cron}"
        return f"{when} ({self.timezone})"


def prefect_schedule(
    cron: str | None, interval_seconds: int | None, timezone: str, anchor: datetime
) -> CronSchedule | IntervalSchedule:
    """The Prefect schedule for a cron expression or an interval (anchored at ``anchor``)."""
    if cron is not None:
        return CronSchedule(cron=cron, timezone=timezone)
    assert interval_seconds is not None
    return IntervalSchedule(
        interval=timedelta(seconds=interval_seconds), anchor_date=anchor, timezone=timezone
    )


@contextmanager
def _server_client(action: str) -> Iterator[SyncPrefectClient]:
    """A client of the Prefect server; an outage becomes PrefectUnavailableError.

    A deployment needs a server: Prefect's ephemeral one ends with the process.
    """
    if configured_prefect_api_url() is None:
        raise PrefectUnavailableError(
            f"could not {action}: schedules need a Prefect server, and none is configured. "
            "Start one with `orca local up` (or `prefect server start`) and set PREFECT_API_URL."
        )
    with prefect_client(action) as client:
        yield client


def check_prefect_reachable(action: str) -> None:
    """Fail fast, before any database write, when the Prefect API does not answer.

    Raises:
        PrefectUnavailableError: No server is configured or it does not answer.
    """
    with _server_client(action) as client:
        error = client.api_healthcheck()
    if error is not None:
        raise prefect_unavailable(action, error)


def _payload(spec: DeploymentSpec) -> dict[str, Any]:
    schedule = prefect_schedule(spec.cron, spec.interval_seconds, spec.timezone, spec.anchor)
    return {
        "parameters": {
            "owner_id": spec.owner_id,
            "pipeline": spec.pipeline,
            "schedule_id": spec.schedule_id,
        },
        "tags": ["orca", f"pipeline:{spec.pipeline}", f"user:{spec.owner_id}"],
        "description": (
            f"Orca schedule {spec.schedule_id}: submits a run of pipeline {spec.pipeline!r} "
            f"(user {spec.owner_id}) {spec.timing}. Each firing only queues the run; the "
            f"pipeline's queue keeps runs in order. Managed by Orca: change it with "
            f"`orca schedule set|pause|resume|remove {spec.pipeline}`."
        ),
        "schedules": [
            DeploymentScheduleCreate(schedule=schedule, active=True, slug=_SCHEDULE_SLUG)
        ],
        "paused": not spec.active,
        # The pool `orca serve`'s process worker polls: its firings run only there.
        "work_pool_name": spec.work_pool,
        "entrypoint": SUBMIT_ENTRYPOINT,
        "parameter_openapi_schema": submit_parameter_schema(),
        "enforce_parameter_schema": True,
    }


def submit_parameters(owner_id: int, pipeline: str, schedule_id: int | None = None) -> None:
    """The submit flow's parameters, as a signature (a test holds the flow's equal to it).

    Args:
        owner_id: The pipeline owner's user id.
        pipeline: The pipeline's name.
        schedule_id: The Orca schedule this deployment fires for; the run is then requested
            by ``schedule:<id>``. ``None`` for a run asked for from Prefect (``api``).
    """


def submit_parameter_schema() -> dict[str, Any]:
    """The OpenAPI schema of the submit flow's parameters, as Prefect builds it."""
    return parameter_schema(submit_parameters).model_dump(exclude_unset=True)


def deployment_name(spec: DeploymentSpec) -> str:
    """The name a schedule's new deployment gets: ``<pipeline>-<8 hex digits>``.

    Derived from the schedule's id and creation time rather than random, so that applying
    the same schedule again (a retry after a crash that lost the deployment's id) upserts
    the same deployment instead of leaving a second one; the creation time keeps the
    names of several Orca databases sharing one Prefect server (staging, production,
    tests) apart, as their schedule ids collide.
    """
    seed = f"{spec.schedule_id}:{spec.anchor.isoformat()}"
    return f"{spec.pipeline}-{hashlib.sha256(seed.encode()).hexdigest()[:8]}"


def _existing_name(client: SyncPrefectClient, deployment_id: str | None) -> str | None:
    if deployment_id is None:
        return None
    try:
        return client.read_deployment(deployment_id).name
    except ObjectNotFound:
        return None  # deleted in Prefect (UI, reset server): create it again


def apply_deployment(spec: DeploymentSpec, deployment_id: str | None) -> str:
    """Create the schedule's deployment, or replace ``deployment_id``'s definition.

    Idempotent: Prefect upserts by (flow, name), and the name is ``deployment_id``'s, else
    `deployment_name` (the same for every attempt), so applying a spec twice writes one
    deployment. Re-applying replaces the schedule and drops the runs it had planned.

    Returns:
        The deployment id.

    Raises:
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    with _server_client(f"write the deployment of pipeline {spec.pipeline!r}") as client:
        name = _existing_name(client, deployment_id) or deployment_name(spec)
        ensure_work_pool(client, spec.work_pool)
        flow_id = client.create_flow_from_name(SUBMIT_FLOW_NAME)
        return str(client.create_deployment(flow_id=flow_id, name=name, **_payload(spec)))


def pause_deployment(deployment_id: str, pipeline: str) -> None:
    """Pause the deployment (Prefect drops the runs it had planned); a missing one is fine.

    Raises:
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    with _server_client(f"pause the deployment of pipeline {pipeline!r}") as client:
        try:
            client.pause_deployment(deployment_id)
        except ObjectNotFound:
            pass  # nothing left to fire


def delete_deployment(deployment_id: str, pipeline: str) -> None:
    """Delete the deployment and its planned runs; a missing one is fine.

    Raises:
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    with _server_client(f"delete the deployment of pipeline {pipeline!r}") as client:
        try:
            client.delete_deployment(UUID(deployment_id))
        except ObjectNotFound:
            pass
