"""Queries and writes on ``runs``: sequence allocation, state compare-and-set, listings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from orca_flows.db.base import utcnow
from orca_flows.db.models import OrderingKeyCounter, Run, RunFlowRun
from orca_flows.domain.states import FINISHED_RUN_STATES, RunState


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched (an UPDATE's result is a cursor result)."""
    return cast(CursorResult[Any], result).rowcount


__all__ = [
    "active_runs",
    "add_flow_run",
    "compare_and_set_state",
    "create_run",
    "earlier_unfinished_runs",
    "flow_run_ids",
    "get_run",
    "get_run_by_idempotency_key",
    "list_runs",
    "mark_stop_requested",
    "next_sequence",
    "set_message_id",
]


def next_sequence(session: Session, ordering_key: str) -> int:
    """Hand out the next sequence number of ``ordering_key`` (1, 2, 3...).

    An ``UPDATE … SET n = n + 1`` takes the row lock on both SQLite and MySQL, so two
    concurrent submitters never get the same number; the first use of a key inserts its
    row inside a savepoint and falls back to the update if another submitter won.
    """
    bump = (
        update(OrderingKeyCounter)
        .where(OrderingKeyCounter.ordering_key == ordering_key)
        .values(last_sequence=OrderingKeyCounter.last_sequence + 1)
    )
    if _rowcount(session.execute(bump)) == 0:
        try:
            with session.begin_nested():
                session.add(OrderingKeyCounter(ordering_key=ordering_key, last_sequence=1))
            return 1
        except IntegrityError:
            session.execute(bump)
    return session.scalars(
        select(OrderingKeyCounter.last_sequence).where(
            OrderingKeyCounter.ordering_key == ordering_key
        )
    ).one()


def create_run(
    session: Session,
    *,
    owner_id: int,
    pipeline_id: int,
    script_version_id: int,
    ordering_key: str,
    requested_by: str,
    run_id: str | None = None,
    idempotency_key: str | None = None,
    parameters: dict[str, str] | None = None,
) -> Run:
    """Insert a ``queued`` run with the next sequence number of its ordering key.

    With an ``idempotency_key`` another run already holds, the flush raises
    ``IntegrityError`` (the unique constraint decides a race between two submitters).
    """
    run = Run(
        id=run_id or str(uuid.uuid4()),
        owner_id=owner_id,
        pipeline_id=pipeline_id,
        script_version_id=script_version_id,
        ordering_key=ordering_key,
        sequence=next_sequence(session, ordering_key),
        state=RunState.QUEUED,
        requested_by=requested_by,
        attempt=0,
        idempotency_key=idempotency_key,
        parameters=parameters or None,
    )
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: str, *, owner_id: int | None = None) -> Run | None:
    """The run ``run_id``; with ``owner_id``, another user's run looks like no run."""
    query = select(Run).where(Run.id == run_id)
    if owner_id is not None:
        query = query.where(Run.owner_id == owner_id)
    return session.scalar(query)


def get_run_by_idempotency_key(session: Session, key: str) -> Run | None:
    """The run an earlier submit with ``key`` created, if any."""
    return session.scalar(select(Run).where(Run.idempotency_key == key))


def add_flow_run(session: Session, run_id: str, flow_run_id: str, attempt: int) -> list[str]:
    """Record that the Prefect flow run ``flow_run_id`` executes ``run_id`` (and make it the
    run's ``flow_run_id``); return the run's earlier flow run ids, oldest first.

    Recording the same flow run twice (a flow run re-entered) keeps one row.
    """
    known = flow_run_ids(session, run_id)
    if flow_run_id not in known:
        session.add(
            RunFlowRun(
                run_id=run_id, flow_run_id=flow_run_id, attempt=attempt, recorded_at=utcnow()
            )
        )
    session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(flow_run_id=flow_run_id)
        .execution_options(synchronize_session=False)
    )
    return [known_id for known_id in known if known_id != flow_run_id]


def flow_run_ids(session: Session, run_id: str) -> list[str]:
    """Every Prefect flow run recorded for ``run_id``, oldest first."""
    return list(
        session.scalars(
            select(RunFlowRun.flow_run_id)
            .where(RunFlowRun.run_id == run_id)
            .order_by(RunFlowRun.recorded_at, RunFlowRun.id)
        )
    )


def compare_and_set_state(
    session: Session, run_id: str, expected: str | Sequence[str], new: str, **values: Any
) -> bool:
    """Move ``run_id`` to ``new`` only if its state is still ``expected``; True if it moved.

    This single conditional UPDATE is what makes claiming and finishing safe when two
    workers race for the same run.
    """
    expected_states = [expected] if isinstance(expected, str) else list(expected)
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state.in_(expected_states))
        .values(state=new, **values)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return _rowcount(result) == 1


def earlier_unfinished_runs(session: Session, run: Run) -> Sequence[Run]:
    """Runs of ``run``'s ordering key with a lower sequence that have not finished (the fence)."""
    return session.scalars(
        select(Run)
        .where(
            Run.ordering_key == run.ordering_key,
            Run.sequence < run.sequence,
            Run.state.not_in(FINISHED_RUN_STATES),
        )
        .order_by(Run.sequence)
    ).all()


def list_runs(
    session: Session,
    owner_id: int,
    *,
    pipeline_id: int | None = None,
    state: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Run]:
    """The owner's runs, newest first, filtered and paginated in the database.

    Their pipelines (with links) and script versions come in two more queries, however
    many runs: a view of each reads them.
    """
    query = (
        select(Run)
        .where(Run.owner_id == owner_id)
        .options(selectinload(Run.pipeline), selectinload(Run.script_version))
    )
    if pipeline_id is not None:
        query = query.where(Run.pipeline_id == pipeline_id)
    if state is not None:
        query = query.where(Run.state == state)
    if since is not None:
        query = query.where(Run.requested_at >= since)
    query = query.order_by(Run.requested_at.desc(), Run.id).limit(limit).offset(offset)
    return session.scalars(query).all()


def active_runs(session: Session, pipeline_id: int) -> Sequence[Run]:
    """The pipeline's unfinished runs (queued, running, cancelling), oldest first."""
    return session.scalars(
        select(Run)
        .where(Run.pipeline_id == pipeline_id, Run.state.not_in(FINISHED_RUN_STATES))
        .order_by(Run.requested_at)
    ).all()


def mark_stop_requested(session: Session, run_id: str, moment: datetime) -> bool:
    """Move the running run ``run_id`` to ``cancelling`` and record when the stop was asked.

    True if the run is ``cancelling`` now (a second stop of a cancelling run keeps the
    first moment). The worker watching the run sees it, kills the execution and, once the
    process is confirmed dead, finishes the run ``cancelled`` (a stop wins over any exit
    code), even if the one who asked never gets to.
    """
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state.in_([RunState.RUNNING, RunState.CANCELLING]))
        .values(
            state=RunState.CANCELLING,
            stop_requested_at=func.coalesce(Run.stop_requested_at, moment),
        )
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return _rowcount(result) == 1


def set_message_id(session: Session, run_id: str, message_id: str, now: datetime) -> bool:
    """Store the id of the message `submit_run` just sent for the run, unless a worker
    parked the run or a waker recorded another message meanwhile.

    A worker may have received the message before this write: if it claimed the run, the
    row still records the message that carried it; if it parked the run (and deleted the
    message), recording the deleted message would make the run look carried for ever, so
    ``parked_at`` refuses it. ``message_sent_at`` starts the sweeper's re-send clock.
    True if recorded.
    """
    return (
        _rowcount(
            session.execute(
                update(Run)
                .where(Run.id == run_id, Run.parked_at.is_(None), Run.sqs_message_id.is_(None))
                .values(sqs_message_id=message_id, message_sent_at=now)
            )
        )
        == 1
    )
