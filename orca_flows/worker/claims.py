"""The worker's database steps: claim behind the ordering fence, lease, finish, sweep.

Every step is one short transaction; every state change is a compare-and-set, so two
workers racing for a run (or a worker and `orca run stop`) end with exactly one winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import Pipeline, Run
from orca_flows.domain.states import FINISHED_RUN_STATES, RunState
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.settings import OrcaSettings

__all__ = [
    "Claim",
    "claim_run",
    "finish_run",
    "is_finished",
    "record_execution",
    "record_flow_run",
    "release_run",
    "renew_lease",
    "keys_to_wake",
    "next_parked_run",
    "start_retry",
    "stop_requested",
]

Action = Literal["execute", "resume", "park", "busy", "drop"]


@dataclass(frozen=True)
class Claim:
    """What to do with a received message.

    ``execute``: this worker claimed the queued run. ``resume``: it took over a running
    run whose worker's lease lapsed (watch its execution; never start a second one).
    ``park``: an earlier run of the ordering key is unfinished (the fence); the run was
    marked as having no message, so delete this one: the run's message is sent again when
    it becomes the first unfinished run of its key. ``busy``: another live worker holds
    the run. ``drop``: the run is finished or gone. ``delay``: seconds to hide the message
    for (busy).
    """

    action: Action
    delay: int = 0
    detail: str = ""
    ordering_key: str = ""


def claim_run(settings: OrcaSettings, run_id: str, worker_id: str) -> Claim:
    """Try to take ``run_id`` for ``worker_id`` (see ``Claim``)."""
    now = utcnow()
    lease_until = now + timedelta(seconds=settings.worker_lease_seconds)
    with session_scope(settings.effective_database_url) as session:
        run = session.get(Run, run_id)
        if run is None or run.state in FINISHED_RUN_STATES:
            return Claim("drop", detail="finished" if run else "no such run")
        if run.state == RunState.QUEUED:
            blockers = runs_repo.earlier_unfinished_runs(session, run)
            if blockers:
                # Parked rather than handed back: each hand-back would count as a receive,
                # and enough of them move the message to the dead-letter queue.
                run.sqs_message_id = None
                return Claim(
                    "park", detail=f"waits for run {blockers[0].id} (seq {blockers[0].sequence})",
                    ordering_key=run.ordering_key,
                )
            claimed = runs_repo.compare_and_set_state(
                session, run_id, RunState.QUEUED, RunState.RUNNING,
                attempt=run.attempt + 1, started_at=now,
                lease_owner=worker_id, lease_expires_at=lease_until,
            )
            return Claim("execute") if claimed else Claim("busy", delay=2, detail="claimed by another worker")
        # Running: a live lease means another worker (or this one) is on it.
        expires = run.lease_expires_at
        if expires is not None and expires > now:
            return Claim("busy", delay=max(1, int((expires - now).total_seconds()) + 1), detail=f"held by {run.lease_owner}")
        taken = session.execute(
            update(Run)
            .where(
                Run.id == run_id,
                Run.state == RunState.RUNNING,
                _same(Run.lease_owner, run.lease_owner),
                _same(Run.lease_expires_at, expires),
            )
            .values(lease_owner=worker_id, lease_expires_at=lease_until)
        ).rowcount
        return Claim("resume") if taken == 1 else Claim("busy", delay=2, detail="taken over by another worker")


def _same(column, value):  # type: ignore[no-untyped-def]
    """``column = value`` that also matches NULL (SQL's ``=`` never does)."""
    return column.is_(None) if value is None else column == value


def renew_lease(settings: OrcaSettings, run_id: str, worker_id: str) -> bool:
    """Extend this worker's lease; False if the run is no longer running under it."""
    until = utcnow() + timedelta(seconds=settings.worker_lease_seconds)
    with session_scope(settings.effective_database_url) as session:
        return session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == RunState.RUNNING, Run.lease_owner == worker_id)
            .values(lease_expires_at=until)
        ).rowcount == 1


def release_run(settings: OrcaSettings, run_id: str, worker_id: str) -> None:
    """Give the run up at once (shutdown): the next worker to see its message resumes it."""
    with session_scope(settings.effective_database_url) as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == RunState.RUNNING, Run.lease_owner == worker_id)
            .values(lease_expires_at=utcnow())
        )


def record_execution(
    settings: OrcaSettings, run_id: str, *, command_id: str, instance_id: str | None
) -> None:
    """Store the command id the moment it exists: a redelivery resumes it, never resends."""
    with session_scope(settings.effective_database_url) as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(command_id=command_id, instance_id=instance_id)
        )


def record_flow_run(settings: OrcaSettings, run_id: str, flow_run_id: str) -> None:
    """Link the run to the Prefect flow run that executes it."""
    with session_scope(settings.effective_database_url) as session:
        session.execute(update(Run).where(Run.id == run_id).values(flow_run_id=flow_run_id))


def start_retry(settings: OrcaSettings, run_id: str, worker_id: str) -> int | None:
    """Begin the next attempt of a failed run (same run, same place in order).

    Returns the new attempt number, or ``None`` if the run is no longer this worker's.
    """
    with session_scope(settings.effective_database_url) as session:
        run = session.get(Run, run_id)
        if run is None or run.state != RunState.RUNNING or run.lease_owner != worker_id:
            return None
        run.attempt += 1
        run.command_id = None
        run.instance_id = None
        return run.attempt


def stop_requested(settings: OrcaSettings, run_id: str) -> bool:
    """Whether `orca run stop` asked for this run (or already cancelled it)."""
    with session_scope(settings.effective_database_url) as session:
        run = session.get(Run, run_id)
        return run is None or run.stop_requested_at is not None or run.state == RunState.CANCELLED


def finish_run(
    settings: OrcaSettings,
    run_id: str,
    state: str,
    *,
    worker_id: str,
    exit_code: int | None,
    error: str | None,
) -> str:
    """Write the final state (compare-and-set from ``running``); returns the state it has.

    Only the lease owner finishes a run: a worker that stalled past its lease while another
    took the run over gets ``running`` back and must leave the run to its new owner. A stop
    requested meanwhile wins: the run ends ``cancelled`` whatever its exit code.
    """
    with session_scope(settings.effective_database_url) as session:
        run = session.get(Run, run_id)
        if run is None:
            return RunState.CANCELLED
        if run.stop_requested_at is not None:
            state, error = RunState.CANCELLED, error or "stopped by the user"
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == RunState.RUNNING, Run.lease_owner == worker_id)
            .values(
                state=state, exit_code=exit_code, finished_at=utcnow(), error_summary=error,
                lease_owner=None, lease_expires_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        session.expire_all()
        final = session.get(Run, run_id)
        return final.state if final else state


def is_finished(settings: OrcaSettings, run_id: str) -> bool:
    """Whether the run is in a final state (or gone): only then may its message be deleted."""
    with session_scope(settings.effective_database_url) as session:
        run = session.get(Run, run_id)
        return run is None or run.state in FINISHED_RUN_STATES


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


def keys_to_wake(session: Session, link_ids: list[int], older_than_seconds: int = 30) -> list[str]:
    """Ordering keys with a queued run that has no message (parked, or its submitter died).

    Only runs older than ``older_than_seconds`` count, so a submit in progress (row
    committed, message about to be sent) is not doubled.
    """
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
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
