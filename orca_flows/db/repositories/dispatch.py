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

from orca_flows.db.models import Pipeline, Run
from orca_flows.domain.states import FINISHED_RUN_STATES, LEASED_RUN_STATES, RunState

__all__ = [
    "finish_run",
    "is_finished",
    "keys_to_wake",
    "leave_cancelling",
    "next_parked_run",
    "park_run",
    "record_execution",
    "record_message",
    "record_rewake",
    "release_lease",
    "renew_lease",
    "request_cancel",
    "runs_to_rewake",
    "start_retry",
    "stop_requested",
    "take_over_lease",
]

STOPPED_BY_USER = "stopped by the user"


def _same(column: InstrumentedAttribute[Any], value: Any) -> ColumnElement[bool]:
    """``column = value`` that also matches NULL (SQL's ``=`` never matches NULL)."""
    return column.is_(None) if value is None else column == value


def _mine(run_id: str, worker_id: str) -> tuple[ColumnElement[bool], ...]:
    """The run is running (or cancelling) under ``worker_id``'s lease."""
    return (Run.id == run_id, Run.state.in_(LEASED_RUN_STATES), Run.lease_owner == worker_id)


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
            Run.state.in_(LEASED_RUN_STATES),
            _same(Run.lease_owner, seen_owner),
            _same(Run.lease_expires_at, seen_expires),
        )
        .values(lease_owner=worker_id, lease_expires_at=until),
    )


def park_run(session: Session, run_id: str, now: datetime) -> bool:
    """Mark a queued run as having no message (it waits behind an earlier run of its key).

    Its message is sent again when it becomes the first unfinished run of its key (see
    ``next_parked_run``). ``parked_at`` stays set from then on: the submitter's late
    record of the message just deleted (``runs.set_message_id``) is refused, so it can
    never make a parked run look carried. True if the run was still queued.
    """
    return _changed(
        session,
        update(Run)
        .where(Run.id == run_id, Run.state == RunState.QUEUED)
        .values(sqs_message_id=None, parked_at=now),
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
    session: Session,
    run_id: str,
    *,
    worker_id: str,
    attempt: int,
    command_id: str,
    instance_id: str | None,
) -> bool:
    """Store the execution's command id (and instance) on the run, fenced by the lease and
    the attempt: a worker that lost its lease, or a late write for an earlier attempt,
    never overwrites the execution the run's owner watches. True if it was stored."""
    return _changed(
        session,
        update(Run)
        .where(*_mine(run_id, worker_id), Run.attempt == attempt)
        .values(command_id=command_id, instance_id=instance_id),
    )


def start_retry(session: Session, run_id: str, worker_id: str) -> int | None:
    """Count the next attempt of a run ``worker_id`` holds and forget the last execution.

    Returns the new attempt number, or ``None`` if the run is no longer running under it
    or a stop was asked for (a stop during the backoff never starts another attempt).
    """
    moved = _changed(
        session,
        update(Run)
        .where(
            *_mine(run_id, worker_id),
            Run.state == RunState.RUNNING,
            Run.stop_requested_at.is_(None),
        )
        .values(attempt=Run.attempt + 1, command_id=None, instance_id=None),
    )
    if not moved:
        return None
    return session.scalar(select(Run.attempt).where(Run.id == run_id))


def request_cancel(session: Session, run_id: str, worker_id: str, now: datetime) -> bool:
    """Move a run ``worker_id`` holds to ``cancelling`` as a stop would (Orca's own stop).

    True if the run is cancelling under that lease now.
    """
    return _changed(
        session,
        update(Run)
        .where(*_mine(run_id, worker_id))
        .values(
            state=RunState.CANCELLING,
            stop_requested_at=func.coalesce(Run.stop_requested_at, now),
        ),
    )


def leave_cancelling(
    session: Session,
    run_id: str,
    reason: str,
    *,
    worker_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Keep a ``cancelling`` run so (its process not confirmed dead), saying why.

    With ``worker_id``, only under that worker's lease, which is let go at ``now``: the
    next worker to see the run's message (or the next `orca run stop`) tries again.
    True if the run was cancelling (under that lease).
    """
    conditions = [Run.id == run_id, Run.state == RunState.CANCELLING]
    values: dict[str, Any] = {"error_summary": reason}
    if worker_id is not None:
        conditions.append(Run.lease_owner == worker_id)
        values["lease_expires_at"] = now
    return _changed(session, update(Run).where(*conditions).values(**values))


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
    """Write a final state from ``running`` or ``cancelling``, only under ``worker_id``'s
    lease (a ``cancelling`` run's worker calls it once the process is confirmed dead).

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


def _due_since(session: Session, run: Run) -> datetime:
    """Since when a live message of the queued head ``run`` should have been received.

    Its last send (or its request, for a row that never recorded one), or the finish of
    the key's run before it, whichever is later: while an earlier run of the key runs, SQS
    holds the group's next message back, so a message sent hours ago may be live still.
    """
    since = run.message_sent_at or run.requested_at
    last_finish = session.scalar(
        select(func.max(Run.finished_at)).where(
            Run.ordering_key == run.ordering_key, Run.sequence < run.sequence
        )
    )
    return max(since, last_finish) if last_finish is not None else since


def next_parked_run(
    session: Session, ordering_key: str, *, rewake_before: datetime | None = None
) -> Run | None:
    """The key's first unfinished run, if it is queued and no live message carries it.

    Not carried: it has no message (parked, or its submitter died before sending), or,
    when ``rewake_before`` is given (the sweeper), its message was due before then: a
    live one would have been received by now, so SQS lost it (retention, dead-letter
    queue) or a late write recorded one that was deleted.
    """
    first = session.scalar(
        select(Run)
        .where(Run.ordering_key == ordering_key, Run.state.not_in(FINISHED_RUN_STATES))
        .order_by(Run.sequence)
        .limit(1)
    )
    if first is None or first.state != RunState.QUEUED:
        return None
    if first.sqs_message_id is None:
        return first
    if rewake_before is not None and _due_since(session, first) < rewake_before:
        return first
    return None


def record_message(
    session: Session,
    run_id: str,
    message_id: str,
    *,
    now: datetime,
    seen_message_id: str | None = None,
) -> bool:
    """Store the id of a wake-up message just sent for a queued run.

    Compare-and-set on ``queued`` and the message id read before the send (NULL for a
    parked run): a run another waker recorded a message for first, or one a worker has
    claimed meanwhile, is left alone. ``message_sent_at`` starts the re-send clock.
    """
    return _changed(
        session,
        update(Run)
        .where(
            Run.id == run_id,
            Run.state == RunState.QUEUED,
            _same(Run.sqs_message_id, seen_message_id),
        )
        .values(sqs_message_id=message_id, message_sent_at=now),
    )


def record_rewake(
    session: Session, run_id: str, message_id: str, *, seen_sent_at: datetime | None, now: datetime
) -> bool:
    """Store a wake-up message just sent for a leased run whose lease had lapsed.

    Compare-and-set on the ``message_sent_at`` read before the send: of two sweepers that
    both sent, one records (the other message is harmless: claims are fenced).
    """
    return _changed(
        session,
        update(Run)
        .where(
            Run.id == run_id,
            Run.state.in_(LEASED_RUN_STATES),
            _same(Run.message_sent_at, seen_sent_at),
        )
        .values(sqs_message_id=message_id, message_sent_at=now),
    )


def keys_to_wake(
    session: Session,
    link_ids: Sequence[int],
    cutoff: datetime,
    rewake_before: datetime | None = None,
) -> list[str]:
    """Ordering keys of the links with a queued run that may lack a live message.

    A queued run requested before ``cutoff`` with no message: parked behind a run whose
    worker died, or its submitter died between commit and send (younger runs are left
    out: their submit may be about to send). With ``rewake_before``: also a queued run
    whose message was sent before then (``next_parked_run`` decides whether it is due).
    """
    no_message = (Run.sqs_message_id.is_(None)) & (Run.requested_at < cutoff)
    lost = (
        Run.sqs_message_id.is_not(None)
        & (func.coalesce(Run.message_sent_at, Run.requested_at) < rewake_before)
        if rewake_before is not None
        else None
    )
    return list(
        session.scalars(
            select(Run.ordering_key)
            .join(Pipeline, Pipeline.id == Run.pipeline_id)
            .where(
                Run.state == RunState.QUEUED,
                no_message if lost is None else (no_message | lost),
                Pipeline.link_id.in_(link_ids),
            )
            .distinct()
        )
    )


def runs_to_rewake(session: Session, link_ids: Sequence[int], before: datetime) -> list[Run]:
    """Running (or cancelling) runs of the links whose lease lapsed and message went missing.

    Lapsed before ``before`` and with no message sent since: the message that carried the
    run should have come back to a worker long ago (its visibility timeout is far
    shorter), so SQS dropped it (12-hour visibility cap, retention, dead-letter queue).
    """
    return list(
        session.scalars(
            select(Run)
            .join(Pipeline, Pipeline.id == Run.pipeline_id)
            .where(
                Run.state.in_(LEASED_RUN_STATES),
                Run.lease_expires_at.is_(None) | (Run.lease_expires_at < before),
                func.coalesce(Run.message_sent_at, Run.requested_at) < before,
                Pipeline.link_id.in_(link_ids),
            )
            .order_by(Run.requested_at)
        )
    )


def _changed(session: Session, statement: Update) -> bool:
    """Run a single-row conditional UPDATE; True if it matched the row."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return cast(CursorResult[Any], result).rowcount == 1
