"""Firings: what one firing of a schedule's deployment may submit (Orca's row decides)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from orca_flows.db.base import utcnow
from orca_flows.db.models import Schedule
from orca_flows.db.repositories import pipelines as pipelines_repo
from orca_flows.db.repositories import schedules as schedules_repo
from orca_flows.errors import InvalidStateError
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.schedule_timing import next_fire_times
from orca_flows.services.lookup import actor_of
from orca_flows.services.runs import earlier_submit, submit_run
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["MISFIRE_GRACE", "Firing", "submit_firing"]

# A firing later than this (or than its schedule's period, if longer) is skipped: after an
# outage of `orca serve` the schedule resumes instead of replaying every missed firing.
MISFIRE_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Firing:
    """What one firing did: the run it submitted (``None`` when skipped) and why."""

    run_id: str | None
    reason: str


def _firing_schedule(
    session: Session,
    schedule_id: int,
    owner_id: int,
    pipeline_name: str,
    deployment_id: str | None,
) -> Schedule:
    """The schedule a firing is for, provided the deployment that fired is still its own."""
    schedule = schedules_repo.get_schedule(session, schedule_id)
    pipeline = pipelines_repo.get_pipeline(session, schedule.pipeline_id) if schedule else None
    if (
        schedule is None
        or pipeline is None
        or (pipeline.owner_id, pipeline.name) != (owner_id, pipeline_name)
    ):
        raise InvalidStateError(
            f"schedule {schedule_id} of pipeline {pipeline_name!r} no longer exists, so "
            f"deployment {deployment_id} is left over: delete it in Prefect."
        )
    if schedule.deployment_id is None:
        # `orca schedule set` wrote the deployment and stopped before recording its id.
        raise InvalidStateError(
            f"schedule {schedule_id} has not recorded its deployment yet: run `orca schedule "
            f"set {pipeline_name} ...` again to finish setting it."
        )
    if schedule.deployment_id != deployment_id:
        raise InvalidStateError(
            f"schedule {schedule_id} fires through deployment {schedule.deployment_id}, not "
            f"{deployment_id}, which is left over: delete it in Prefect."
        )
    return schedule


def submit_firing(
    settings: OrcaSettings,
    owner_id: int,
    pipeline_name: str,
    *,
    schedule_id: int | None,
    deployment_id: str | None,
    scheduled_for: datetime,
    flow_run_id: str | None = None,
) -> Firing:
    """Submit the run one firing asks for (what Orca's submit flow does), at most once.

    A schedule's firing is checked against Orca's row first: a paused schedule submits
    nothing (a firing Prefect had already handed out when it was paused), and a firing
    later than its period and MISFIRE_GRACE (``orca serve`` was down) is skipped, so an
    outage does not end in a burst of replayed runs.

    The firing's flow run id is the run's idempotency key: the same flow run executed
    again (a retry of the submit flow, a flow run Prefect hands out twice, a crashed
    `orca serve` restarting it) returns the run it made the first time.

    Args:
        settings: Orca's settings.
        owner_id: The pipeline's owner (the flow's parameters carry ids, not an Actor).
        pipeline_name: The pipeline.
        schedule_id: The schedule that fired; ``None`` for a run asked for from Prefect.
        deployment_id: The Prefect deployment the flow run came from.
        scheduled_for: When the flow run was scheduled to start.
        flow_run_id: The firing's flow run; ``None`` submits without an idempotency key.

    Raises:
        InvalidStateError: The deployment is not (any more) the schedule's.
        NotFoundError: The pipeline does not exist.
    """
    key = f"flow-run:{flow_run_id}" if flow_run_id else None
    actor = actor_of(settings, owner_id)
    # Before the schedule's checks: a repeat of a firing that submitted is that run, even
    # once the schedule is paused or the firing is past its grace.
    earlier = earlier_submit(settings, actor, key)
    if earlier is not None:
        return Firing(earlier.run_id, f"already submitted by flow run {flow_run_id}")
    requested_by = "api"
    if schedule_id is not None:
        skipped = _skip_reason(
            settings, schedule_id, owner_id, pipeline_name, deployment_id, scheduled_for
        )
        if skipped:
            return Firing(None, skipped)
        requested_by = f"schedule:{schedule_id}"
    # The flow calls this in a thread without Prefect's context: name the API again.
    with prefect_api(settings):
        submitted = submit_run(
            settings, actor, pipeline_name, requested_by=requested_by, idempotency_key=key
        )
    return Firing(submitted.run_id, f"requested by {requested_by}")


def _skip_reason(
    settings: OrcaSettings,
    schedule_id: int,
    owner_id: int,
    pipeline_name: str,
    deployment_id: str | None,
    scheduled_for: datetime,
) -> str | None:
    with unit_of_work(settings) as session:
        schedule = _firing_schedule(session, schedule_id, owner_id, pipeline_name, deployment_id)
        if not schedule.active:
            return f"schedule {schedule_id} is paused"
        upcoming = next_fire_times(schedule, 2, after=scheduled_for)
    later = [moment for moment in upcoming if moment > scheduled_for]
    period = later[0] - scheduled_for if later else timedelta(0)
    late = timedelta(seconds=round((utcnow() - scheduled_for).total_seconds()))
    if late > max(period, MISFIRE_GRACE):
        return (
            f"the firing of {scheduled_for.isoformat()} is {late} late, more than "
            f"{max(period, MISFIRE_GRACE)}: skipped (was `orca serve` down?); the schedule "
            "goes on with its next firing"
        )
    return None
