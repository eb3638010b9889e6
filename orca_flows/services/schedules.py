"""Schedules: a pipeline that runs by itself, as a Prefect deployment of Orca's submit flow.

The Schedule row and the deployment are written together: the row is flushed first, the
Prefect write comes last inside the same transaction, and a transaction that does not
commit undoes the Prefect write. A firing only submits a run; the queue keeps the order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import Pipeline, Schedule, User
from orca_flows.db.repositories import schedules as schedules_repo
from orca_flows.db.repositories.users import get_user
from orca_flows.errors import InvalidStateError, NotFoundError, OrcaError
from orca_flows.services.pipelines import get_pipeline
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.services.runs import submit_run
from orca_flows.prefect_adapter.deployments import (
    DeploymentSpec,
    apply_deployment,
    check_prefect_reachable,
    delete_deployment,
    pause_deployment,
)
from orca_flows.prefect_adapter.schedule_timing import check_timing, next_fire_times
from orca_flows.settings import OrcaSettings

__all__ = [
    "MISFIRE_GRACE",
    "Firing",
    "ScheduleView",
    "list_schedules",
    "pause_schedule",
    "remove_schedule",
    "resume_schedule",
    "served_deployments",
    "set_schedule",
    "submit_firing",
]

logger = logging.getLogger(__name__)

# A firing later than this (or than its schedule's period, if longer) is skipped: after an
# outage of `orca serve` the schedule resumes instead of replaying every missed firing.
MISFIRE_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class ScheduleView:
    """A schedule as `orca schedule list --json` prints it.

    ``next_fire_times`` are ISO 8601 times in the schedule's time zone (empty when paused).
    """

    id: int
    pipeline: str
    cron: str | None
    interval_seconds: int | None
    timezone: str
    active: bool
    deployment_id: str | None
    next_fire_times: list[str]

    def as_dict(self) -> dict[str, object]:
        """The view as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Firing:
    """What one firing did: the run it submitted (``None`` when skipped) and why."""

    run_id: str | None
    reason: str


def _spec(schedule: Schedule, pipeline: Pipeline) -> DeploymentSpec:
    return DeploymentSpec(
        schedule_id=schedule.id,
        owner_id=pipeline.owner_id,
        pipeline=pipeline.name,
        cron=schedule.cron,
        interval_seconds=schedule.interval_seconds,
        timezone=schedule.timezone,
        anchor=schedule.created_at,
        active=schedule.active,
    )


def _view(schedule: Schedule, pipeline: Pipeline, fire_times: int = 3) -> ScheduleView:
    return ScheduleView(
        id=schedule.id,
        pipeline=pipeline.name,
        cron=schedule.cron,
        interval_seconds=schedule.interval_seconds,
        timezone=schedule.timezone,
        active=schedule.active,
        deployment_id=schedule.deployment_id,
        next_fire_times=[moment.isoformat() for moment in next_fire_times(schedule, fire_times)],
    )


@contextmanager
def _transaction_undoing_prefect(
    settings: OrcaSettings,
) -> Iterator[tuple[Session, list[Callable[[], object]]]]:
    """A transaction plus a list of undo steps for the Prefect writes made inside it.

    If the block fails or the commit does, the rows roll back and the undo steps run (last
    first), so a Schedule row and its deployment never disagree.
    """
    undo: list[Callable[[], object]] = []
    try:
        with session_scope(settings.effective_database_url) as session:
            yield session, undo
    except BaseException:
        for step in reversed(undo):
            try:
                step()
            except OrcaError as error:
                logger.warning("could not undo a Prefect write after a failure: %s", error)
        raise


def _owner(session: Session, owner_id: int) -> User:
    owner = get_user(session, owner_id)
    if owner is None:
        raise NotFoundError("user", str(owner_id))
    return owner


def _scheduled(session: Session, owner_id: int, pipeline_name: str) -> tuple[Schedule, Pipeline]:
    pipeline = get_pipeline(session, _owner(session, owner_id), pipeline_name)
    schedule = schedules_repo.get_schedule_of_pipeline(session, pipeline.id)
    if schedule is None:
        raise NotFoundError(
            "schedule of pipeline",
            pipeline_name,
            f"Create one with `orca schedule set {pipeline_name} --cron EXPR` (or --interval).",
        )
    return schedule, pipeline


def set_schedule(
    settings: OrcaSettings,
    owner_id: int,
    pipeline_name: str,
    *,
    cron: str | None = None,
    interval_seconds: int | None = None,
    timezone: str = "UTC",
) -> ScheduleView:
    """Create or change the pipeline's schedule and its Prefect deployment.

    A paused schedule stays paused; its new timing applies once resumed.

    Args:
        settings: Orca's settings.
        owner_id: The pipeline's owner (the acting user).
        pipeline_name: The owner's pipeline.
        cron: A 5-field cron expression, or None with ``interval_seconds``.
        interval_seconds: Seconds between firings, or None with ``cron``.
        timezone: IANA time zone the cron expression (and DST handling) refers to.

    Raises:
        InvalidInputError: A bad timing (see `check_timing`).
        NotFoundError: No such pipeline for this owner.
        PrefectUnavailableError: The Prefect API cannot be reached; nothing was written.
    """
    check_timing(settings, cron, interval_seconds, timezone)
    with prefect_api(settings):
        check_prefect_reachable(f"schedule pipeline {pipeline_name!r}")
        with _transaction_undoing_prefect(settings) as (session, undo):
            pipeline = get_pipeline(session, _owner(session, owner_id), pipeline_name)
            schedule = schedules_repo.get_schedule_of_pipeline(session, pipeline.id)
            previous = None
            if schedule is None:
                schedule = schedules_repo.create_schedule(
                    session, pipeline_id=pipeline.id, cron=cron,
                    interval_seconds=interval_seconds, timezone=timezone,
                )
            else:
                previous = _spec(schedule, pipeline)
                schedule.cron, schedule.interval_seconds = cron, interval_seconds
                schedule.timezone = timezone
                session.flush()
            deployment_id = apply_deployment(_spec(schedule, pipeline), schedule.deployment_id)
            if previous is None:
                undo.append(lambda: delete_deployment(deployment_id, pipeline_name))
            else:
                undo.append(lambda: apply_deployment(previous, deployment_id))
            schedule.deployment_id = deployment_id
            session.flush()
            return _view(schedule, pipeline)


def pause_schedule(settings: OrcaSettings, owner_id: int, pipeline_name: str) -> ScheduleView:
    """Stop the schedule firing; Prefect drops the runs it had planned.

    Raises:
        NotFoundError: No such pipeline, or it has no schedule.
        PrefectUnavailableError: The Prefect API cannot be reached; nothing changed.
    """
    with prefect_api(settings):
        check_prefect_reachable(f"pause the schedule of {pipeline_name!r}")
        with _transaction_undoing_prefect(settings) as (session, undo):
            schedule, pipeline = _scheduled(session, owner_id, pipeline_name)
            schedule.active = False
            session.flush()
            if schedule.deployment_id:
                deployment_id = schedule.deployment_id
                pause_deployment(deployment_id, pipeline_name)
                active = replace(_spec(schedule, pipeline), active=True)
                undo.append(lambda: apply_deployment(active, deployment_id))
            return _view(schedule, pipeline)


def resume_schedule(settings: OrcaSettings, owner_id: int, pipeline_name: str) -> ScheduleView:
    """Let a paused schedule fire again (re-creating its deployment if it was deleted).

    Raises:
        NotFoundError: No such pipeline, or it has no schedule.
        PrefectUnavailableError: The Prefect API cannot be reached; nothing changed.
    """
    with prefect_api(settings):
        check_prefect_reachable(f"resume the schedule of {pipeline_name!r}")
        with _transaction_undoing_prefect(settings) as (session, undo):
            schedule, pipeline = _scheduled(session, owner_id, pipeline_name)
            schedule.active = True
            session.flush()
            deployment_id = apply_deployment(_spec(schedule, pipeline), schedule.deployment_id)
            undo.append(lambda: pause_deployment(deployment_id, pipeline_name))
            schedule.deployment_id = deployment_id
            session.flush()
            return _view(schedule, pipeline)


def remove_schedule(settings: OrcaSettings, owner_id: int, pipeline_name: str) -> None:
    """Delete the schedule and its Prefect deployment (with the runs it had planned).

    The row goes first and the deployment last, so a Prefect failure keeps both. Should the
    commit itself fail after the deployment is gone, running the command again finishes
    the job (a missing deployment is not an error).

    Raises:
        NotFoundError: No such pipeline, or it has no schedule.
        PrefectUnavailableError: The Prefect API cannot be reached; nothing changed.
    """
    with prefect_api(settings):
        check_prefect_reachable(f"remove the schedule of {pipeline_name!r}")
        with session_scope(settings.effective_database_url) as session:
            schedule, _ = _scheduled(session, owner_id, pipeline_name)
            session.delete(schedule)
            session.flush()
            if schedule.deployment_id:
                delete_deployment(schedule.deployment_id, pipeline_name)


def list_schedules(session: Session, owner: User, *, fire_times: int = 3) -> list[ScheduleView]:
    """The owner's schedules by pipeline name, each with its next ``fire_times`` firings."""
    return [
        _view(schedule, pipeline, fire_times)
        for schedule, pipeline in schedules_repo.list_schedules(session, owner.id)
    ]


def _firing_schedule(
    session: Session,
    schedule_id: int,
    owner_id: int,
    pipeline_name: str,
    deployment_id: str | None,
) -> Schedule:
    """The schedule a firing is for, provided the deployment that fired is still its own."""
    schedule = schedules_repo.get_schedule(session, schedule_id)
    pipeline = session.get(Pipeline, schedule.pipeline_id) if schedule else None
    if schedule is None or pipeline is None or (pipeline.owner_id, pipeline.name) != (
        owner_id, pipeline_name
    ):
        raise InvalidStateError(
            f"schedule {schedule_id} of pipeline {pipeline_name!r} no longer exists, so "
            f"deployment {deployment_id} is left over: delete it in Prefect."
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
) -> Firing:
    """Submit the run one firing asks for (what Orca's submit flow does).

    A schedule's firing is checked against Orca's row first: a paused schedule submits
    nothing (a firing Prefect had already handed out when it was paused), and a firing
    later than its period and MISFIRE_GRACE (``orca serve`` was down) is skipped, so an
    outage does not end in a burst of replayed runs.

    Args:
        settings: Orca's settings.
        owner_id: The pipeline's owner.
        pipeline_name: The pipeline.
        schedule_id: The schedule that fired; ``None`` for a run asked for from Prefect.
        deployment_id: The Prefect deployment the flow run came from.
        scheduled_for: When the flow run was scheduled to start.

    Raises:
        InvalidStateError: The deployment is not (any more) the schedule's.
        NotFoundError: The pipeline does not exist.
    """
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
        submitted = submit_run(settings, owner_id, pipeline_name, requested_by=requested_by)
    return Firing(submitted.run_id, f"requested by {requested_by}")


def _skip_reason(
    settings: OrcaSettings,
    schedule_id: int,
    owner_id: int,
    pipeline_name: str,
    deployment_id: str | None,
    scheduled_for: datetime,
) -> str | None:
    with session_scope(settings.effective_database_url) as session:
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


def served_deployments(settings: OrcaSettings) -> Sequence[tuple[str, int]]:
    """Every schedule's deployment id with its schedule id (what `orca serve` watches)."""
    with session_scope(settings.effective_database_url) as session:
        return [
            (schedule.deployment_id, schedule.id)
            for schedule in schedules_repo.list_served_schedules(session)
            if schedule.deployment_id
        ]
