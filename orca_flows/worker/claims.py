"""The worker's decisions on a run: claim behind the ordering fence, lease, finish, wake.

Each step is one short unit of work around the compare-and-sets of
``orca_flows.db.repositories.dispatch``, so two workers racing for a run (or a worker and
`orca run stop`) end with exactly one winner. No step makes a network call while its unit
of work is open; the worker sends messages and talks to runners between steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from orca_flows.db.base import utcnow
from orca_flows.db.models import Run
from orca_flows.db.repositories import dispatch as dispatch_repo
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.states import FINISHED_RUN_STATES, RunState
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "SWEEP_CUTOFF_SECONDS",
    "Claim",
    "ClaimAction",
    "ParkedRun",
    "RunLabels",
    "claim_run",
    "finish_run",
    "give_up_watching",
    "is_finished",
    "keys_to_wake",
    "leased_runs_to_rewake",
    "leave_cancelling",
    "parked_run",
    "record_execution",
    "record_flow_run",
    "record_message",
    "record_rewake",
    "release_run",
    "renew_lease",
    "run_labels",
    "start_retry",
    "stop_requested",
]

# A queued run without a message is woken only once it is this old: a submit in progress
# (row committed, message about to be sent) must not get a second message.
SWEEP_CUTOFF_SECONDS = 30


class ClaimAction(StrEnum):
    """What a worker does with a received run message."""

    EXECUTE = "execute"  # it claimed the queued run: start it
    RESUME = "resume"  # it took over a running run whose lease lapsed: watch, never restart
    PARK = "park"  # an earlier run of the key is unfinished: delete the message, wake later
    BUSY = "busy"  # another live worker holds the run: hide the message for ``delay``
    DROP = "drop"  # the run is finished or gone: delete the message


@dataclass(frozen=True)
class Claim:
    """The outcome of ``claim_run``.

    ``PARK``: the run was marked as having no message, so the worker deletes this one; the
    run's message is sent again when it becomes the first unfinished run of its key (the
    worker wakes ``ordering_key`` at once in case the blocker just finished). Parked rather
    than handed back: each hand-back counts as a receive, and enough of them move the
    message to the dead-letter queue.

    Attributes:
        action: What to do with the message.
        delay: Seconds to hide the message for (``BUSY``).
        detail: Why, for the log.
        ordering_key: The run's key (``PARK``).
    """

    action: ClaimAction
    delay: int = 0
    detail: str = ""
    ordering_key: str = ""


@dataclass(frozen=True)
class ParkedRun:
    """A run waiting for a wake-up message, as read in step 1 of a wake-up.

    Attributes:
        run: The run's row, detached from its session (read its columns only).
        link_id: The link whose queue carries the run's messages.
    """

    run: Run
    link_id: int


@dataclass(frozen=True)
class RunLabels:
    """What the worker names a run's flow run and tags it with."""

    pipeline: str
    owner_id: int
    attempt: int
    ordering_key: str


def claim_run(settings: OrcaSettings, run_id: str, worker_id: str) -> Claim:
    """Try to take ``run_id`` for ``worker_id`` (see ``ClaimAction`` for the outcomes)."""
    now = utcnow()
    lease_until = now + timedelta(seconds=settings.worker_lease_seconds)
    with unit_of_work(settings) as session:
        run = runs_repo.get_run(session, run_id)
        if run is None or run.state in FINISHED_RUN_STATES:
            return Claim(ClaimAction.DROP, detail="finished" if run else "no such run")
        if run.state == RunState.QUEUED:
            blockers = runs_repo.earlier_unfinished_runs(session, run)
            if blockers:
                dispatch_repo.park_run(session, run_id, now)
                first = blockers[0]
                return Claim(
                    ClaimAction.PARK,
                    detail=f"waits for run {first.id} (seq {first.sequence})",
                    ordering_key=run.ordering_key,
                )
            claimed = runs_repo.compare_and_set_state(
                session,
                run_id,
                RunState.QUEUED,
                RunState.RUNNING,
                attempt=run.attempt + 1,
                started_at=now,
                lease_owner=worker_id,
                lease_expires_at=lease_until,
            )
            if claimed:
                return Claim(ClaimAction.EXECUTE)
            return Claim(ClaimAction.BUSY, delay=2, detail="claimed by another worker")
        # Running: a live lease means another worker (or this one) is on it.
        owner, expires = run.lease_owner, run.lease_expires_at
        if expires is not None and expires > now:
            wait = max(1, int((expires - now).total_seconds()) + 1)
            return Claim(ClaimAction.BUSY, delay=wait, detail=f"held by {owner}")
        taken = dispatch_repo.take_over_lease(
            session,
            run_id,
            seen_owner=owner,
            seen_expires=expires,
            worker_id=worker_id,
            until=lease_until,
        )
    if taken:
        return Claim(ClaimAction.RESUME, detail=f"lease of {owner} lapsed")
    return Claim(ClaimAction.BUSY, delay=2, detail="taken over by another worker")


def renew_lease(settings: OrcaSettings, run_id: str, worker_id: str) -> bool:
    """Extend this worker's lease; False if the run is no longer running under it."""
    until = utcnow() + timedelta(seconds=settings.worker_lease_seconds)
    with unit_of_work(settings) as session:
        return dispatch_repo.renew_lease(session, run_id, worker_id, until)


def release_run(settings: OrcaSettings, run_id: str, worker_id: str) -> None:
    """Give the run up at once (shutdown): the next worker to see its message resumes it."""
    with unit_of_work(settings) as session:
        dispatch_repo.release_lease(session, run_id, worker_id, utcnow())


def record_execution(
    settings: OrcaSettings,
    run_id: str,
    *,
    worker_id: str,
    attempt: int,
    command_id: str,
    instance_id: str | None,
) -> bool:
    """Store the command id the moment it exists: a redelivery resumes it, never resends.

    False if ``worker_id`` no longer holds the run's ``attempt``: its new owner finds the
    execution by the attempt's key instead.
    """
    with unit_of_work(settings) as session:
        return dispatch_repo.record_execution(
            session,
            run_id,
            worker_id=worker_id,
            attempt=attempt,
            command_id=command_id,
            instance_id=instance_id,
        )


def record_flow_run(settings: OrcaSettings, run_id: str, flow_run_id: str) -> list[str]:
    """Link the run to the Prefect flow run that executes (or resumes) it, at the run's
    current attempt; returns the run's earlier flow run ids, oldest first (a resume sets
    those its dead workers left non-final ``Crashed``, outside this unit)."""
    with unit_of_work(settings) as session:
        run = runs_repo.get_run(session, run_id)
        attempt = run.attempt if run is not None else 0
        return runs_repo.add_flow_run(session, run_id, flow_run_id, attempt)


def start_retry(settings: OrcaSettings, run_id: str, worker_id: str) -> int | None:
    """Begin the next attempt of a failed run (same run, same place in order).

    Returns the new attempt number, or ``None`` if the run is no longer this worker's.
    """
    with unit_of_work(settings) as session:
        return dispatch_repo.start_retry(session, run_id, worker_id)


def leave_cancelling(settings: OrcaSettings, run_id: str, worker_id: str, reason: str) -> None:
    """Give up a ``cancelling`` run whose process could not be confirmed dead, saying why.

    The run stays ``cancelling`` (its key waits) and the lease is let go: the next worker
    to receive its message takes it over and tries the kill again.
    """
    with unit_of_work(settings) as session:
        dispatch_repo.leave_cancelling(session, run_id, reason, worker_id=worker_id, now=utcnow())


def give_up_watching(settings: OrcaSettings, run_id: str, worker_id: str, reason: str) -> None:
    """Make a running run Orca lost sight of ``cancelling`` (a stop by Orca), saying why.

    Its process could not be confirmed dead, so its key waits; the lease is let go and the
    next worker to see the run tries the kill again, as for a user's stop.
    """
    with unit_of_work(settings) as session:
        now = utcnow()
        if dispatch_repo.request_cancel(session, run_id, worker_id, now):
            dispatch_repo.leave_cancelling(session, run_id, reason, worker_id=worker_id, now=now)


def stop_requested(settings: OrcaSettings, run_id: str) -> bool:
    """Whether `orca run stop` asked for this run (or already cancelled it)."""
    with unit_of_work(settings) as session:
        return dispatch_repo.stop_requested(session, run_id)


def finish_run(
    settings: OrcaSettings,
    run_id: str,
    state: RunState,
    *,
    worker_id: str,
    exit_code: int | None,
    error: str | None,
) -> RunState:
    """Write the final state (compare-and-set from ``running`` or ``cancelling``); returns
    the state it has.

    Only the lease owner finishes a run: a worker that stalled past its lease while another
    took the run over gets ``running`` back and must leave the run to its new owner. A stop
    requested meanwhile wins: the run ends ``cancelled`` whatever its exit code. A run
    that is gone counts as ``cancelled``.
    """
    with unit_of_work(settings) as session:
        final = dispatch_repo.finish_run(
            session,
            run_id,
            state,
            worker_id=worker_id,
            exit_code=exit_code,
            error=error,
            now=utcnow(),
        )
    return RunState.CANCELLED if final is None else final


def is_finished(settings: OrcaSettings, run_id: str) -> bool:
    """Whether the run is in a final state (or gone): only then may its message be deleted."""
    with unit_of_work(settings) as session:
        return dispatch_repo.is_finished(session, run_id)


def run_labels(settings: OrcaSettings, run_id: str) -> RunLabels | None:
    """The run's pipeline name, owner, attempt and key; ``None`` if the run is gone."""
    with unit_of_work(settings) as session:
        run = runs_repo.get_run(session, run_id)
        if run is None:
            return None
        return RunLabels(run.pipeline.name, run.owner_id, run.attempt, run.ordering_key)


def parked_run(
    settings: OrcaSettings, ordering_key: str, *, rewake: bool = False
) -> ParkedRun | None:
    """The key's next run if it is parked (queued, no message to carry it).

    Step 1 of waking a key; the worker then sends the message outside any transaction and
    records it with ``record_message``. ``rewake`` (the sweeper): also a queued head run
    whose message was due more than ``rewake_after_seconds`` ago and never received.
    """
    rewake_before = utcnow() - timedelta(seconds=settings.rewake_after_seconds)
    with unit_of_work(settings) as session:
        run = dispatch_repo.next_parked_run(
            session, ordering_key, rewake_before=rewake_before if rewake else None
        )
        if run is None:
            return None
        return ParkedRun(run, run.pipeline.link_id)


def record_message(
    settings: OrcaSettings, run_id: str, message_id: str, *, seen_message_id: str | None = None
) -> bool:
    """Step 2 of waking a key: store the sent message's id if the run is still as read.

    ``seen_message_id``: the message id read in step 1 (None for a parked run). False when
    another waker recorded its message first, or a worker claimed the run meanwhile; the
    extra message is harmless (see ``Sweeper.wake``).
    """
    with unit_of_work(settings) as session:
        return dispatch_repo.record_message(
            session, run_id, message_id, now=utcnow(), seen_message_id=seen_message_id
        )


def keys_to_wake(
    settings: OrcaSettings,
    link_ids: list[int],
    older_than_seconds: int = SWEEP_CUTOFF_SECONDS,
    *,
    rewake: bool = False,
) -> list[str]:
    """Ordering keys with a queued run older than ``older_than_seconds`` that has no message.

    Parked runs whose blocker's worker died, and runs whose submitter died between commit
    and send; with ``rewake``, also keys whose queued run's message is older than
    ``rewake_after_seconds`` (``parked_run`` tells whether it is the head and due).
    """
    if not link_ids:
        return []
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than_seconds)
    rewake_before = now - timedelta(seconds=settings.rewake_after_seconds) if rewake else None
    with unit_of_work(settings) as session:
        return dispatch_repo.keys_to_wake(session, link_ids, cutoff, rewake_before)


def leased_runs_to_rewake(settings: OrcaSettings, link_ids: list[int]) -> list[ParkedRun]:
    """Running or cancelling runs whose lease lapsed and whose message SQS no longer has.

    Lapsed for more than ``rewake_after_seconds``, with no message sent since: the worker
    re-sends one so that a worker takes the lease over and resumes the run.
    """
    if not link_ids:
        return []
    before = utcnow() - timedelta(seconds=settings.rewake_after_seconds)
    with unit_of_work(settings) as session:
        found = dispatch_repo.runs_to_rewake(session, link_ids, before)
        return [ParkedRun(run, run.pipeline.link_id) for run in found]


def record_rewake(settings: OrcaSettings, leased: ParkedRun, message_id: str) -> bool:
    """Record the wake-up message sent for a lapsed leased run (compare-and-set on its
    last send): False when another sweeper recorded one first."""
    with unit_of_work(settings) as session:
        return dispatch_repo.record_rewake(
            session,
            leased.run.id,
            message_id,
            seen_sent_at=leased.run.message_sent_at,
            now=utcnow(),
        )
