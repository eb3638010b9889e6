"""The worker's queries on ``runs``: lease compare-and-sets, park, finish, and what to wake.

Every write here is one conditional ``UPDATE`` (a compare-and-set): it changes the row only
if the row is still what the caller saw, and reports whether it did, so two workers racing
for a run (or a worker and `orca run stop`) end with exactly one winner on SQLite and MySQL.
Like every repository, these functions take the caller's session and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Update, case, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from orca_flows.db.models import CloudLink, Pipeline, Run
from orca_flows.domain.states import FINISHED_RUN_STATES, RunState

__all__ = [
    "finish_run",
    "get_link",
    "is_finished",
    "keys_to_wake",
    "links_to_serve",
    "next_parked_run",
    "park_run",
    "record_execution",
    "record_flow_run",
    "record_message",
    "release_lease",
    "renew_lease",
    "start_retry",
    "stop_requested",
    "take_over_lease",
]

STOPPED_BY_USER = "stopped by the user"


def _same(column: InstrumentedAttribute[Any], value: Any) -> ColumnElement[bool]:
    """``column = value`` that also matches NULL (SQL's ``=`` never matches NULL)."""
    return column.is_(None) if value is None else column == value


def _mine(run_id: str, worker_id: str) -> tuple[ColumnElement[bool], ...]:
    """The run is running under ``worker_id``'s lease."""
    return (Run.id == run_id, Run.state == RunState.RUNNING, Run.lease_owner == worker_id)


def take_over_lease(
    session: Session,
    run_id: str,
    *,
    seen_owner: str | None,
    seen_expires: datetime | None,
    worker_id: str,
    until: datetime,
) -> bool:
    """Take the lease of a running run whose lease was seen lapsed (or never set).

    Compares the owner and expiry the caller read (NULL-safe: a run whose lease is NULL
    is taken over exactly once), so of two workers that saw the same lapsed lease only
    the first one's update matches. True if this worker holds the lease now.
    """
    return _changed(
        session,
        update(Run)
        .where(
            Run.id == run_id,
            Run.state == RunState.RUNNING,
            _same(Run.lease_owner, seen_owner),
            _same(Run.lease_expires_at, seen_expires),
        )
        .values(lease_owner=worker_id, lease_expires_at=until),
    )


def park_run(session: Session, run_id: str) -> bool:
    """Mark a queued run as having no message (it waits behind an earlier run of its key).

    Its message is sent again when it becomes the first unfinished run of its key (see
    ``next_parked_run``). True if the run was still queued.
    """
    return _changed(
        session,
        update(Run)
        .where(Run.id == run_id, Run.state == RunState.QUEUED)
        .values(sqs_message_id=None),
    )


def renew_lease(session: Session, run_id: str, worker_id: str, until: datetime) -> bool:
    """Extend ``worker_id``'s lease to ``until``; False if the run is no longer its."""
    return _changed(
        session, update(Run).where(*_mine(run_id, worker_id)).values(lease_expires_at=until)
    )


def release_lease(session: Session, run_id: str, worker_id: str, now: datetime) -> bool:
    """Let ``worker_id``'s lease lapse at ``now``: the next worker to see the run resumes it."""
    return _changed(
        session, update(Run).where(*_mine(run_id, worker_id)).values(lease_expires_at=now)
    )


def record_execution(
    session: Session, run_id: str, *, command_id: str, instance_id: str | None
) -> None:
    """Store the execution's command id (and instance) on the run."""
    session.execute(
        update(Run).where(Run.id == run_id).values(command_id=command_id, instance_id=instance_id)
    )


def record_flow_run(session: Session, run_id: str, flow_run_id: str) -> None:
    """Link the run to the Prefect flow run that executes it."""
    session.execute(update(Run).where(Run.id == run_id).values(flow_run_id=flow_run_id))


def start_retry(session: Session, run_id: str, worker_id: str) -> int | None:
    """Count the next attempt of a run ``worker_id`` holds and forget the last execution.

    Returns the new attempt number, or ``None`` if the run is no longer running under it.
    """
    moved = _changed(
        session,
        update(Run)
        .where(*_mine(run_id, worker_id))
        .values(attempt=Run.attempt + 1, command_id=None, instance_id=None),
    )
    if not moved:
        return None
    return session.scalar(select(Run.attempt).where(Run.id == run_id))


def stop_requested(session: Session, run_id: str) -> bool:
    """Whether `orca run stop` asked for the run, or it is cancelled or gone."""
    row = session.execute(
        select(Run.stop_requested_at, Run.state).where(Run.id == run_id)
    ).one_or_none()
    return row is None or row.stop_requested_at is not None or row.state == RunState.CANCELLED


def finish_run(
    session: Session,
    run_id: str,
    state: RunState,
    *,
    worker_id: str,
    exit_code: int | None,
    error: str | None,
    now: datetime,
) -> RunState | None:
    """Write a final state from ``running``, only under ``worker_id``'s lease.

    A stop requested before this update wins inside the same statement: the run ends
    ``cancelled`` whatever ``state`` says, so no read-then-write gap lets a stop slip by.
    Returns the state the run has afterwards (``running`` if another worker holds it),
    or ``None`` if the run is gone.
    """
    stopped = Run.stop_requested_at.is_not(None)
    session.execute(
        update(Run)
        .where(*_mine(run_id, worker_id))
        .values(
            state=case((stopped, RunState.CANCELLED.value), else_=RunState(state).value),
            error_summary=case((stopped, func.coalesce(error, STOPPED_BY_USER)), else_=error),
            exit_code=exit_code,
            finished_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    final = session.scalar(select(Run.state).where(Run.id == run_id))
    return None if final is None else RunState(final)


def is_finished(session: Session, run_id: str) -> bool:
    """Whether the run is in a final state, or gone."""
    state = session.scalar(select(Run.state).where(Run.id == run_id))
    return state is None or state in FINISHED_RUN_STATES


def next_parked_run(session: Session, ordering_key: str) -> Run | None:
    """The key's first unfinished run, if it is queued and has no message to carry it."""
    first = session.scalar(
        select(Run)
        .where(Run.ordering_key == ordering_key, Run.state.not_in(FINISHED_RUN_STATES))
        .order_by(Run.sequence)
        .limit(1)
    )
    if first is not None and first.state == RunState.QUEUED and first.sqs_message_id is None:
        return first
    return None


def record_message(session: Session, run_id: str, message_id: str) -> bool:
    """Store the id of a message just sent for a parked run, if it is still parked.

    Compare-and-set on ``sqs_message_id IS NULL`` and ``queued``: a run another waker
    recorded a message for first, or one a worker has claimed meanwhile, is left alone.
    """
    return _changed(
        session,
        update(Run)
        .where(Run.id == run_id, Run.state == RunState.QUEUED, Run.sqs_message_id.is_(None))
        .values(sqs_message_id=message_id),
    )


def keys_to_wake(session: Session, link_ids: Sequence[int], cutoff: datetime) -> list[str]:
    """Ordering keys of the links with a queued run requested before ``cutoff`` and no message.

    Such a run is parked behind a run whose worker died, or its submitter died between
    commit and send. Younger runs are left out: their submit may be about to send.
    """
    return list(
        session.scalars(
            select(Run.ordering_key)
            .join(Pipeline, Pipeline.id == Run.pipeline_id)
            .where(
                Run.state == RunState.QUEUED,
                Run.sqs_message_id.is_(None),
                Run.requested_at < cutoff,
                Pipeline.link_id.in_(link_ids),
            )
            .distinct()
        )
    )


def get_link(session: Session, link_id: int) -> CloudLink | None:
    """The link ``link_id`` (pending or not), or ``None`` once it is removed."""
    return session.get(CloudLink, link_id)


def links_to_serve(session: Session, names: Sequence[str] = ()) -> Sequence[CloudLink]:
    """Every usable link with a queue (or those named), oldest first: what a worker serves.

    A link still being created (``pending_since`` set) is left out until it is ready.
    """
    query = (
        select(CloudLink)
        .where(CloudLink.queue_url.is_not(None), CloudLink.pending_since.is_(None))
        .order_by(CloudLink.id)
    )
    if names:
        query = query.where(CloudLink.name.in_(names))
    return session.scalars(query).all()


def _changed(session: Session, statement: Update) -> bool:
    """Run a single-row conditional UPDATE; True if it matched the row."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return cast(CursorResult[Any], result).rowcount == 1
