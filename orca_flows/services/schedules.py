"""Schedules: a pipeline that runs by itself, as a Prefect deployment of Orca's submit flow.

The Schedule row is the truth and its deployment follows it. No Prefect call is made while
a transaction is open, so every change (set, pause, resume, remove) takes three steps:

1. **intent**, one unit of work: the row takes the state asked for (timing, active); its
   ``deployment_id`` stays what it was;
2. **call**, no transaction: the deployment is made to say what the row says (an
   idempotent upsert under a name that is the same on every attempt), paused or deleted;
3. **record**, one unit of work: the deployment's id is stored (remove: the row deleted).

Before step 1 the Prefect API is asked whether it answers, so an outage usually refuses
the command before anything is written. When step 2 or 3 fails, the command is undone
(Prefect's side first, then the row's previous values, unless another command changed the
row meanwhile), so a refused command changed nothing; only a Prefect write whose answer
was lost can leave the deployment ahead of the row. A crash between the steps leaves a
row that already says what was asked and a deployment that may lag behind it; the same
command run again finishes the job, every step being idempotent. Meanwhile the row
decides what a firing may do (`services.firings`): a paused row, or a deployment that is
not (yet, or any more) the row's, submits nothing. `orca serve` serves the recorded ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy.exc import SQLAlchemyError

from orca_flows.db.models import Pipeline, Schedule
from orca_flows.db.repositories import pipelines as pipelines_repo
from orca_flows.db.repositories import schedules as schedules_repo
from orca_flows.domain.actor import Actor
from orca_flows.domain.views import ScheduleView
from orca_flows.errors import NotFoundError, OrcaError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.deployments import (
    DeploymentSpec,
    apply_deployment,
    check_prefect_reachable,
    delete_deployment,
    pause_deployment,
)
from orca_flows.prefect_adapter.schedule_timing import check_timing, next_fire_times
from orca_flows.services.lookup import get_pipeline
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "list_schedules",
    "pause_schedule",
    "remove_schedule",
    "resume_schedule",
    "served_deployments",
    "set_schedule",
]

logger = get_logger(__name__)


class _Timing(NamedTuple):
    cron: str | None
    interval_seconds: int | None
    timezone: str


@dataclass(frozen=True)
class _Intent:
    """What step 1 wrote: the deployment as the row now says it, and the row before it."""

    spec: DeploymentSpec
    deployment_id: str | None
    previous: DeploymentSpec | None  # None: this command created the row


def _spec(schedule: Schedule, pipeline: Pipeline, work_pool: str) -> DeploymentSpec:
    return DeploymentSpec(
        schedule_id=schedule.id,
        owner_id=pipeline.owner_id,
        pipeline=pipeline.name,
        cron=schedule.cron,
        interval_seconds=schedule.interval_seconds,
        timezone=schedule.timezone,
        anchor=schedule.created_at,
        active=schedule.active,
        work_pool=work_pool,
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
        next_fire_times=tuple(
            moment.isoformat() for moment in next_fire_times(schedule, fire_times)
        ),
    )


def _no_schedule(pipeline_name: str) -> NotFoundError:
    return NotFoundError(
        "schedule of pipeline",
        pipeline_name,
        f"Create one with `orca schedule set {pipeline_name} --cron EXPR` (or --interval).",
    )


def _write_intent(
    settings: OrcaSettings,
    actor: Actor,
    pipeline_name: str,
    *,
    timing: _Timing | None = None,
    active: bool | None = None,
) -> _Intent:
    """Step 1: the row takes the new timing and/or active flag (created with a timing)."""
    pool = settings.schedule_work_pool
    with unit_of_work(settings) as session:
        pipeline = get_pipeline(session, actor, pipeline_name)
        schedule = schedules_repo.get_schedule_of_pipeline(session, pipeline.id)
        previous = None if schedule is None else _spec(schedule, pipeline, pool)
        if schedule is None:
            if timing is None:
                raise _no_schedule(pipeline_name)
            schedule = schedules_repo.create_schedule(
                session,
                pipeline_id=pipeline.id,
                cron=timing.cron,
                interval_seconds=timing.interval_seconds,
                timezone=timing.timezone,
            )
        elif timing is not None:
            schedule.cron, schedule.interval_seconds, schedule.timezone = timing
        if active is not None:
            schedule.active = active
        session.flush()
        return _Intent(_spec(schedule, pipeline, pool), schedule.deployment_id, previous)


def _record(
    settings: OrcaSettings, schedule_id: int, deployment_id: str | None = None
) -> ScheduleView:
    """Step 3: the row's deployment id (when given); returns the row's view."""
    with unit_of_work(settings) as session:
        schedule = schedules_repo.get_schedule(session, schedule_id)
        pipeline = pipelines_repo.get_pipeline(session, schedule.pipeline_id) if schedule else None
        if schedule is None or pipeline is None:  # removed by a concurrent command
            raise NotFoundError("schedule", str(schedule_id), "It was removed meanwhile.")
        if deployment_id is not None:
            schedule.deployment_id = deployment_id
            session.flush()
        return _view(schedule, pipeline)


def _restore_row(settings: OrcaSettings, intent: _Intent) -> None:
    """Put the row back as it was before step 1, unless another command changed it since."""
    written = intent.spec
    with unit_of_work(settings) as session:
        schedule = schedules_repo.get_schedule(session, written.schedule_id)
        if schedule is None or (
            schedule.cron,
            schedule.interval_seconds,
            schedule.timezone,
            schedule.active,
            schedule.deployment_id,
        ) != (
            written.cron,
            written.interval_seconds,
            written.timezone,
            written.active,
            intent.deployment_id,
        ):
            return
        previous = intent.previous
        if previous is None:
            schedules_repo.delete_schedule(session, schedule)
        else:
            schedule.cron, schedule.interval_seconds = previous.cron, previous.interval_seconds
            schedule.timezone, schedule.active = previous.timezone, previous.active
        session.flush()


def _undo(
    settings: OrcaSettings, intent: _Intent, prefect_step: Callable[[], object] | None
) -> None:
    """Undo a command that failed after step 1 (best effort: the caller re-raises)."""
    steps = [prefect_step] if prefect_step else []
    for step in [*steps, lambda: _restore_row(settings, intent)]:
        try:
            step()
        except (OrcaError, SQLAlchemyError) as error:
            logger.warning(
                "Could not undo the change to schedule %s of pipeline %r (%s); running the "
                "command again finishes it.",
                intent.spec.schedule_id,
                intent.spec.pipeline,
                error,
            )


def _undo_apply(intent: _Intent, deployment_id: str) -> Callable[[], object]:
    if deployment_id != intent.deployment_id or intent.previous is None:
        return lambda: delete_deployment(deployment_id, intent.spec.pipeline)  # a new one
    previous = intent.previous
    return lambda: apply_deployment(previous, deployment_id)


def _apply_and_record(settings: OrcaSettings, intent: _Intent) -> ScheduleView:
    """Steps 2 and 3 of set and resume: the deployment the row says, then its id."""
    try:
        deployment_id = apply_deployment(intent.spec, intent.deployment_id)
    except Exception:
        _undo(settings, intent, None)
        raise
    try:
        return _record(settings, intent.spec.schedule_id, deployment_id)
    except NotFoundError:  # a concurrent remove: the deployment just written is left over
        _undo(settings, intent, lambda: delete_deployment(deployment_id, intent.spec.pipeline))
        raise
    except Exception:
        _undo(settings, intent, _undo_apply(intent, deployment_id))
        raise


def set_schedule(
    settings: OrcaSettings,
    actor: Actor,
    pipeline_name: str,
    *,
    cron: str | None = None,
    interval_seconds: int | None = None,
    timezone: str = "UTC",
) -> ScheduleView:
    """Create or change the pipeline's schedule and its Prefect deployment.

    A paused schedule stays paused; its new timing applies once resumed. Intent: the row
    with its new timing; call: the deployment upserted to say it; record: its id. After a
    crash the deployment may still have the old timing (or, for a new schedule, the row no
    deployment id and nothing fires): running the same command again finishes it.

    Args:
        settings: Orca's settings.
        actor: The acting user, the pipeline's owner.
        pipeline_name: The actor's pipeline.
        cron: A 5-field cron expression, or None with ``interval_seconds``.
        interval_seconds: Seconds between firings, or None with ``cron``.
        timezone: IANA time zone the cron expression (and DST handling) refers to.

    Raises:
        InvalidInputError: A bad timing (see `check_timing`).
        NotFoundError: No such pipeline for this actor.
        PrefectUnavailableError: The Prefect API cannot be reached; nothing changed.
    """
    check_timing(settings, cron, interval_seconds, timezone)
    with prefect_api(settings):
        check_prefect_reachable(f"schedule pipeline {pipeline_name!r}")
        timing = _Timing(cron, interval_seconds, timezone)
        intent = _write_intent(settings, actor, pipeline_name, timing=timing)
        return _apply_and_record(settings, intent)


def pause_schedule(settings: OrcaSettings, actor: Actor, pipeline_name: str) -> ScheduleView:
    """Stop the schedule firing; Prefect drops the runs it had planned.

    Intent: the row paused, which already stops firings from submitting; call: the
    deployment paused. After a crash between the two, pausing again pauses the deployment.

    Raises:
        NotFoundError: No such pipeline, or it has no schedule.
        PrefectUnavailableError: The Prefect API cannot be reached; nothing changed.
    """
    with prefect_api(settings):
        check_prefect_reachable(f"pause the schedule of {pipeline_name!r}")
        intent = _write_intent(settings, actor, pipeline_name, active=False)
        try:
            if intent.deployment_id:  # None: an interrupted set left nothing to pause
                pause_deployment(intent.deployment_id, pipeline_name)
        except Exception:
            _undo(settings, intent, None)
            raise
    return _record(settings, intent.spec.schedule_id)


def resume_schedule(settings: OrcaSettings, actor: Actor, pipeline_name: str) -> ScheduleView:
    """Let a paused schedule fire again (re-creating its deployment if it was deleted).

    Intent: the row active; call: the deployment upserted active; record: its id. After a
    crash the deployment may still be paused (nothing fires): resuming again finishes it.

    Raises:
        NotFoundError: No such pipeline, or it has no schedule.
        PrefectUnavailableError: The Prefect API cannot be reached; nothing changed.
    """
    with prefect_api(settings):
        check_prefect_reachable(f"resume the schedule of {pipeline_name!r}")
        intent = _write_intent(settings, actor, pipeline_name, active=True)
        return _apply_and_record(settings, intent)


def remove_schedule(settings: OrcaSettings, actor: Actor, pipeline_name: str) -> None:
    """Delete the schedule and its Prefect deployment (with the runs it had planned).

    Intent: the row paused, so no firing submits from here on; call: the deployment
    deleted (a missing one is not an error); record: the row deleted. After a crash the
    schedule shows as paused: removing it again finishes the job.

    Raises:
        NotFoundError: No such pipeline, or it has no schedule.
        PrefectUnavailableError: The Prefect API cannot be reached; nothing changed.
    """
    with prefect_api(settings):
        check_prefect_reachable(f"remove the schedule of {pipeline_name!r}")
        intent = _write_intent(settings, actor, pipeline_name, active=False)
        try:
            if intent.deployment_id:
                delete_deployment(intent.deployment_id, pipeline_name)
        except Exception:
            _undo(settings, intent, None)
            raise
    with unit_of_work(settings) as session:
        schedule = schedules_repo.get_schedule(session, intent.spec.schedule_id)
        if schedule is not None:
            schedules_repo.delete_schedule(session, schedule)


def list_schedules(
    settings: OrcaSettings, actor: Actor, *, fire_times: int = 3
) -> list[ScheduleView]:
    """The actor's schedules by pipeline name, each with its next ``fire_times`` firings."""
    with unit_of_work(settings) as session:
        return [
            _view(schedule, pipeline, fire_times)
            for schedule, pipeline in schedules_repo.list_schedules(session, actor.user_id)
        ]


def served_deployments(settings: OrcaSettings) -> Sequence[tuple[str, int]]:
    """Every schedule's deployment id with its schedule id (what `orca serve` watches)."""
    with unit_of_work(settings) as session:
        return [
            (schedule.deployment_id, schedule.id)
            for schedule in schedules_repo.list_served_schedules(session)
            if schedule.deployment_id
        ]
