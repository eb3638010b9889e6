"""Queries and writes on ``schedules``: one per pipeline, firing through a Prefect deployment."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from orca_flows.db.models import Pipeline, Schedule

__all__ = [
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "get_schedule_of_pipeline",
    "list_schedules",
    "list_served_schedules",
]


def create_schedule(
    session: Session,
    *,
    pipeline_id: int,
    cron: str | None,
    interval_seconds: int | None,
    timezone: str,
) -> Schedule:
    """Insert an active schedule without its deployment yet (the unique pipeline_id fails here)."""
    schedule = Schedule(
        pipeline_id=pipeline_id,
        cron=cron,
        interval_seconds=interval_seconds,
        timezone=timezone,
        active=True,
    )
    session.add(schedule)
    session.flush()
    return schedule


def delete_schedule(session: Session, schedule: Schedule) -> None:
    """Delete the schedule's row (its Prefect deployment is the caller's business)."""
    session.delete(schedule)
    session.flush()


def get_schedule(session: Session, schedule_id: int) -> Schedule | None:
    """The schedule ``schedule_id``, or ``None``."""
    return session.get(Schedule, schedule_id)


def get_schedule_of_pipeline(session: Session, pipeline_id: int) -> Schedule | None:
    """The pipeline's schedule, or ``None``."""
    return session.scalar(select(Schedule).where(Schedule.pipeline_id == pipeline_id))


def list_schedules(session: Session, owner_id: int) -> Sequence[tuple[Schedule, Pipeline]]:
    """The owner's schedules with their pipelines, by pipeline name."""
    rows = session.execute(
        select(Schedule, Pipeline)
        .join(Pipeline, Pipeline.id == Schedule.pipeline_id)
        .where(Pipeline.owner_id == owner_id)
        .order_by(Pipeline.name)
    )
    return [(schedule, pipeline) for schedule, pipeline in rows]


def list_served_schedules(session: Session) -> Sequence[Schedule]:
    """Every user's schedules that have a deployment (what `orca serve` watches)."""
    return session.scalars(
        select(Schedule).where(Schedule.deployment_id.is_not(None)).order_by(Schedule.id)
    ).all()
