"""The states: stored values never change, the transitions are the lifecycle's."""

from __future__ import annotations

import pytest

from orca_flows.domain.states import (
    FINISHED_RUN_STATES,
    CheckStatus,
    ExecutionState,
    RunState,
    can_move,
)


def test_stored_values_are_the_contract() -> None:
    assert [s.value for s in RunState] == [
        "queued", "running", "cancelling", "succeeded", "failed", "timed_out", "cancelled"
    ]  # fmt: skip
    assert [s.value for s in CheckStatus] == ["passed", "failed", "unverified", "skipped"]
    assert RunState.QUEUED == "queued" and "queued" in {RunState.QUEUED}


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        pytest.param(RunState.QUEUED, RunState.RUNNING, True, id="claim"),
        pytest.param(RunState.QUEUED, RunState.CANCELLED, True, id="stop-queued"),
        pytest.param(RunState.RUNNING, RunState.SUCCEEDED, True, id="finish"),
        pytest.param(RunState.RUNNING, RunState.CANCELLED, True, id="stop-running"),
        pytest.param(RunState.RUNNING, RunState.CANCELLING, True, id="stop-asked"),
        pytest.param(RunState.CANCELLING, RunState.CANCELLED, True, id="process-gone"),
        pytest.param(RunState.CANCELLING, RunState.SUCCEEDED, False, id="stop-wins"),
        pytest.param(RunState.QUEUED, RunState.CANCELLING, False, id="nothing-to-kill"),
        pytest.param(RunState.QUEUED, RunState.SUCCEEDED, False, id="finish-unclaimed"),
        pytest.param(RunState.SUCCEEDED, RunState.RUNNING, False, id="reopen"),
        pytest.param(RunState.CANCELLED, RunState.QUEUED, False, id="requeue"),
    ],
)
def test_transitions(current: RunState, target: RunState, allowed: bool) -> None:
    assert can_move(current, target) is allowed


def test_an_ended_execution_gives_its_run_state_and_a_live_one_none() -> None:
    ended = [state for state in ExecutionState if state.finished]
    assert {state.run_state() for state in ended} == FINISHED_RUN_STATES
    assert [s for s in ExecutionState if s.retryable] == [
        ExecutionState.FAILED,
        ExecutionState.TIMED_OUT,
    ]
    with pytest.raises(ValueError, match="not final"):
        ExecutionState.RUNNING.run_state()
    assert not RunState.RUNNING.finished and RunState.TIMED_OUT.finished
    assert not RunState.CANCELLING.finished  # its key waits until the process is gone
