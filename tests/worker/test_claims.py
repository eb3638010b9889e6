"""The claim fence in-process, on SQLite and MariaDB: every Claim, the lease, finish, the sweep.

These are the decisions the multi-process suite (tests/execution) exercises end to end; here
a regression shows in seconds, with the race made deterministic where it can be.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.repositories import dispatch as dispatch_repo
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.states import RunState
from orca_flows.worker import claims
from orca_flows.worker.claims import ClaimAction
from tests.worker.conftest import LEASE_SECONDS, Board

# --- claim_run: every branch ---------------------------------------------------------------


def test_a_queued_run_first_in_its_key_is_claimed_for_execution(board: Board) -> None:
    run_id = board.submit()

    claim = claims.claim_run(board.settings, run_id, "w1")

    assert claim.action == ClaimAction.EXECUTE
    run = board.get(run_id)
    assert (run.state, run.attempt, run.lease_owner) == (RunState.RUNNING, 1, "w1")
    assert run.started_at is not None and run.lease_expires_at is not None
    remaining = (run.lease_expires_at - utcnow()).total_seconds()
    assert LEASE_SECONDS - 5 < remaining <= LEASE_SECONDS


def test_a_run_held_under_a_live_lease_is_busy_until_the_lease_would_lapse(board: Board) -> None:
    run_id = board.submit()
    claims.claim_run(board.settings, run_id, "w1")

    claim = claims.claim_run(board.settings, run_id, "w2")

    assert claim.action == ClaimAction.BUSY
    assert LEASE_SECONDS - 5 < claim.delay <= LEASE_SECONDS + 1
    assert "w1" in claim.detail
    assert board.get(run_id).lease_owner == "w1"


def test_a_running_run_whose_lease_lapsed_is_resumed_not_restarted(board: Board) -> None:
    run_id = board.submit()
    claims.claim_run(board.settings, run_id, "w1")
    board.set(run_id, lease_expires_at=utcnow() - timedelta(seconds=1), command_id="cmd-1")

    claim = claims.claim_run(board.settings, run_id, "w2")

    assert claim.action == ClaimAction.RESUME
    run = board.get(run_id)
    # Same attempt and command: the new owner watches the execution already started.
    assert (run.state, run.attempt, run.command_id, run.lease_owner) == (
        RunState.RUNNING,
        1,
        "cmd-1",
        "w2",
    )
    assert run.lease_expires_at is not None and run.lease_expires_at > utcnow()


def test_a_run_behind_an_unfinished_earlier_run_is_parked_until_that_one_ends(
    board: Board,
) -> None:
    first, second = board.submit("k"), board.submit("k", message_id="m2")
    other_key = board.submit("other")

    parked = claims.claim_run(board.settings, second, "w1")

    assert parked.action == ClaimAction.PARK
    assert parked.ordering_key == "k" and first in parked.detail
    run = board.get(second)
    assert (run.state, run.sqs_message_id) == (RunState.QUEUED, None)
    # The fence is per key: another key's run is not held back.
    assert claims.claim_run(board.settings, other_key, "w1").action == ClaimAction.EXECUTE

    board.set(first, state=RunState.SUCCEEDED)
    assert claims.claim_run(board.settings, second, "w1").action == ClaimAction.EXECUTE


def test_the_claim_is_busy_when_another_worker_wins_the_compare_and_set(
    board: Board, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = board.submit()
    fence = runs_repo.earlier_unfinished_runs

    def rival_claims_meanwhile(session: Session, run):  # type: ignore[no-untyped-def]
        # Between this worker's read and its compare-and-set, another worker's claim lands
        # (written through this session: a separate one would wait on SQLite's write lock).
        runs_repo.compare_and_set_state(
            session,
            run.id,
            RunState.QUEUED,
            RunState.RUNNING,
            attempt=1,
            lease_owner="w2",
            lease_expires_at=utcnow() + timedelta(seconds=LEASE_SECONDS),
        )
        return fence(session, run)

    monkeypatch.setattr(runs_repo, "earlier_unfinished_runs", rival_claims_meanwhile)

    claim = claims.claim_run(board.settings, run_id, "w1")

    assert (claim.action, claim.delay) == (ClaimAction.BUSY, 2)
    run = board.get(run_id)
    assert (run.lease_owner, run.attempt) == ("w2", 1)


@pytest.mark.parametrize(
    "state", [pytest.param(state, id=state.value) for state in RunState if state.finished]
)
def test_the_message_of_a_finished_run_is_dropped(board: Board, state: RunState) -> None:
    run_id = board.submit()
    board.set(run_id, state=state)

    claim = claims.claim_run(board.settings, run_id, "w1")

    assert (claim.action, claim.detail) == (ClaimAction.DROP, "finished")
    assert board.get(run_id).state == state


def test_the_message_of_a_missing_run_is_dropped(board: Board) -> None:
    claim = claims.claim_run(board.settings, "00000000-0000-0000-0000-000000000000", "w1")

    assert (claim.action, claim.detail) == (ClaimAction.DROP, "no such run")


# --- the NULL-safe lease compare-and-set ---------------------------------------------------


def test_a_run_with_no_lease_is_taken_over_exactly_once_by_two_workers_that_saw_it(
    board: Board,
) -> None:
    run_id = board.submit()
    board.set(run_id, state=RunState.RUNNING, lease_owner=None, lease_expires_at=None)
    until = utcnow() + timedelta(seconds=LEASE_SECONDS)
    url = board.settings.effective_database_url

    # Both workers read the run with a NULL lease; their compare-and-sets then run in turn.
    # SQL's "lease_owner = NULL" would match nothing: neither would ever take the run over.
    taken = []
    for worker_id in ("w1", "w2"):
        with session_scope(url) as session:
            taken.append(
                dispatch_repo.take_over_lease(
                    session,
                    run_id,
                    seen_owner=None,
                    seen_expires=None,
                    worker_id=worker_id,
                    until=until,
                )
            )

    assert taken == [True, False]
    assert board.get(run_id).lease_owner == "w1"


def test_two_racing_claims_of_a_run_with_no_lease_resume_it_once(board: Board) -> None:
    run_id = board.submit()
    board.set(run_id, state=RunState.RUNNING, lease_owner=None, lease_expires_at=None)
    start = threading.Barrier(2)
    outcomes: dict[str, ClaimAction] = {}

    def claim(worker_id: str) -> None:
        start.wait()
        outcomes[worker_id] = claims.claim_run(board.settings, run_id, worker_id).action

    threads = [threading.Thread(target=claim, args=(w,)) for w in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == [ClaimAction.BUSY, ClaimAction.RESUME]
    winner = next(w for w, action in outcomes.items() if action == ClaimAction.RESUME)
    assert board.get(run_id).lease_owner == winner


# --- lease upkeep --------------------------------------------------------------------------


def test_only_the_lease_owner_renews_and_a_released_lease_is_taken_over_at_once(
    board: Board,
) -> None:
    run_id = board.submit()
    claims.claim_run(board.settings, run_id, "w1")

    assert claims.renew_lease(board.settings, run_id, "w1") is True
    assert claims.renew_lease(board.settings, run_id, "w2") is False

    claims.release_run(board.settings, run_id, "w2")  # not w2's: no effect
    assert claims.claim_run(board.settings, run_id, "w2").action == ClaimAction.BUSY
    claims.release_run(board.settings, run_id, "w1")
    assert claims.claim_run(board.settings, run_id, "w2").action == ClaimAction.RESUME
    assert claims.renew_lease(board.settings, run_id, "w1") is False


def test_a_retry_counts_an_attempt_and_forgets_the_last_command_only_for_the_owner(
    board: Board,
) -> None:
    run_id = board.submit()
    claims.claim_run(board.settings, run_id, "w1")
    claims.record_execution(
        board.settings, run_id, worker_id="w1", attempt=1, command_id="cmd-1", instance_id="i-1"
    )

    assert claims.start_retry(board.settings, run_id, "w2") is None
    assert claims.start_retry(board.settings, run_id, "w1") == 2
    run = board.get(run_id)
    assert (run.attempt, run.command_id, run.instance_id) == (2, None, None)


# --- finish_run ----------------------------------------------------------------------------


def test_finish_writes_the_final_state_and_frees_the_lease(board: Board) -> None:
    run_id = board.submit()
    claims.claim_run(board.settings, run_id, "w1")

    final = claims.finish_run(
        board.settings, run_id, RunState.FAILED, worker_id="w1", exit_code=3, error="exit 3"
    )

    assert final == RunState.FAILED
    run = board.get(run_id)
    assert (run.state, run.exit_code, run.error_summary) == (RunState.FAILED, 3, "exit 3")
    assert (run.lease_owner, run.lease_expires_at) == (None, None)
    assert run.finished_at is not None


@pytest.mark.parametrize(
    ("state", "exit_code", "error", "summary"),
    [
        pytest.param(RunState.SUCCEEDED, 0, None, "stopped by the user", id="succeeded"),
        pytest.param(RunState.FAILED, 137, "killed", "killed", id="failed"),
        pytest.param(RunState.TIMED_OUT, None, "no marker", "no marker", id="timed-out"),
    ],
)
def test_a_stop_requested_before_the_finish_wins_whatever_the_exit_code(
    board: Board, state: RunState, exit_code: int | None, error: str | None, summary: str
) -> None:
    run_id = board.submit()
    claims.claim_run(board.settings, run_id, "w1")
    board.set(run_id, stop_requested_at=utcnow())

    final = claims.finish_run(
        board.settings, run_id, state, worker_id="w1", exit_code=exit_code, error=error
    )

    assert final == RunState.CANCELLED
    run = board.get(run_id)
    assert (run.state, run.exit_code, run.error_summary) == (RunState.CANCELLED, exit_code, summary)


def test_only_the_lease_owner_finishes_a_run(board: Board) -> None:
    run_id = board.submit()
    claims.claim_run(board.settings, run_id, "w1")
    board.set(run_id, lease_expires_at=utcnow() - timedelta(seconds=1))
    assert claims.claim_run(board.settings, run_id, "w2").action == ClaimAction.RESUME

    # w1 stalled past its lease; its finish is refused and the run stays w2's.
    stale = claims.finish_run(
        board.settings, run_id, RunState.FAILED, worker_id="w1", exit_code=1, error="late"
    )
    assert stale == RunState.RUNNING
    assert (board.get(run_id).state, board.get(run_id).lease_owner) == (RunState.RUNNING, "w2")
    assert claims.is_finished(board.settings, run_id) is False

    final = claims.finish_run(
        board.settings, run_id, RunState.SUCCEEDED, worker_id="w2", exit_code=0, error=None
    )
    assert final == RunState.SUCCEEDED
    assert claims.is_finished(board.settings, run_id) is True


def test_a_run_gone_before_its_finish_counts_as_cancelled(board: Board) -> None:
    missing = "00000000-0000-0000-0000-000000000000"

    final = claims.finish_run(
        board.settings, missing, RunState.SUCCEEDED, worker_id="w1", exit_code=0, error=None
    )

    assert final == RunState.CANCELLED
    assert claims.is_finished(board.settings, missing) is True
    assert claims.stop_requested(board.settings, missing) is True


def test_stop_requested_sees_the_mark_and_a_cancelled_run(board: Board) -> None:
    marked, cancelled, plain = board.submit("a"), board.submit("b"), board.submit("c")
    board.set(marked, state=RunState.RUNNING, stop_requested_at=utcnow())
    board.set(cancelled, state=RunState.CANCELLED)

    assert [claims.stop_requested(board.settings, r) for r in (marked, cancelled, plain)] == [
        True,
        True,
        False,
    ]


# --- waking parked runs --------------------------------------------------------------------


def test_the_sweep_wakes_only_keys_with_an_old_queued_run_that_has_no_message(
    board: Board,
) -> None:
    board.submit("parked", message_id=None, age_s=120)
    board.submit("young", message_id=None, age_s=1)  # its submitter is about to send
    board.submit("sent", message_id="m", age_s=120)
    running = board.submit("running", message_id=None, age_s=120)
    board.set(running, state=RunState.RUNNING)
    other_link = board.add_link("other")

    assert claims.keys_to_wake(board.settings, [board.link_id], older_than_seconds=30) == ["parked"]
    assert sorted(claims.keys_to_wake(board.settings, [board.link_id], older_than_seconds=0)) == [
        "parked",
        "young",
    ]
    assert claims.keys_to_wake(board.settings, [other_link], older_than_seconds=0) == []
    assert claims.keys_to_wake(board.settings, [], older_than_seconds=0) == []


def test_the_next_parked_run_is_the_first_unfinished_one_of_its_key(board: Board) -> None:
    first = board.submit("k", message_id=None)
    second = board.submit("k", message_id=None)

    parked = claims.parked_run(board.settings, "k")
    assert parked is not None and parked.run.id == first and parked.link_id == board.link_id

    board.set(first, state=RunState.RUNNING)
    assert claims.parked_run(board.settings, "k") is None  # the first is still unfinished

    board.set(first, state=RunState.SUCCEEDED)
    parked = claims.parked_run(board.settings, "k")
    assert parked is not None and parked.run.id == second

    board.set(second, sqs_message_id="m2")
    assert claims.parked_run(board.settings, "k") is None  # it has a message already


def test_a_sent_message_is_recorded_only_while_the_run_is_still_parked(board: Board) -> None:
    parked, claimed = board.submit("a", message_id=None), board.submit("b", message_id=None)
    board.set(claimed, state=RunState.RUNNING)

    assert claims.record_message(board.settings, parked, "m1") is True
    assert claims.record_message(board.settings, parked, "m2") is False  # another waker's
    assert claims.record_message(board.settings, claimed, "m3") is False
    assert board.get(parked).sqs_message_id == "m1"
    assert board.get(claimed).sqs_message_id is None
