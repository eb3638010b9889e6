"""Every state Orca names: a run's, an execution's and a link-check step's, with their moves.

The values are what the database stores and `--json` prints, so they never change; the
enums are ``StrEnum`` and compare equal to those strings.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "FINISHED_RUN_STATES",
    "LEASED_RUN_STATES",
    "RUN_TRANSITIONS",
    "CheckStatus",
    "ExecutionState",
    "RunState",
    "can_move",
]


class RunState(StrEnum):
    """The run states of DESIGN.md's lifecycle."""

    QUEUED = "queued"
    RUNNING = "running"
    # Stop asked for a running run: its process may still be alive, so the key waits.
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the run has reached a final state (nothing moves it any more)."""
        return self in FINISHED_RUN_STATES


FINISHED_RUN_STATES: frozenset[RunState] = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.TIMED_OUT, RunState.CANCELLED}
)

# States in which a worker holds the run's lease and watches its process.
LEASED_RUN_STATES: frozenset[RunState] = frozenset({RunState.RUNNING, RunState.CANCELLING})

# Which state may follow which: the worker's claim (queued → running), its finish, a stop.
# A stop of a running run goes through ``cancelling`` until its process is confirmed dead;
# a queued run has no process, so its stop is ``cancelled`` at once.
RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.CANCELLED}),
    RunState.RUNNING: FINISHED_RUN_STATES | {RunState.CANCELLING},
    RunState.CANCELLING: frozenset({RunState.CANCELLED}),
    **{state: frozenset() for state in FINISHED_RUN_STATES},
}


def can_move(current: RunState | str, target: RunState | str) -> bool:
    """Whether a run in ``current`` may move to ``target``."""
    return RunState(target) in RUN_TRANSITIONS[RunState(current)]


class ExecutionState(StrEnum):
    """How one execution (an SSM command or a local process) stands, as its runner sees it."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the execution has ended."""
        return self not in {ExecutionState.PENDING, ExecutionState.RUNNING}

    @property
    def retryable(self) -> bool:
        """Whether another attempt may fix it (a failure or a timeout, never a stop)."""
        return self in {ExecutionState.FAILED, ExecutionState.TIMED_OUT}

    def run_state(self) -> RunState:
        """The final run state an ended execution gives its run.

        Raises:
            ValueError: The execution has not ended.
        """
        if not self.finished:
            raise ValueError(f"execution state {self.value!r} is not final")
        return _RUN_STATE_OF_EXECUTION[self]


# What an ended execution makes of its run (a table, not "the strings happen to match").
_RUN_STATE_OF_EXECUTION: dict[ExecutionState, RunState] = {
    ExecutionState.SUCCEEDED: RunState.SUCCEEDED,
    ExecutionState.FAILED: RunState.FAILED,
    ExecutionState.TIMED_OUT: RunState.TIMED_OUT,
    ExecutionState.CANCELLED: RunState.CANCELLED,
}


class CheckStatus(StrEnum):
    """The outcome of one `orca link check` step (and of the whole check)."""

    PASSED = "passed"
    FAILED = "failed"
    UNVERIFIED = "unverified"  # the sandbox's emulator lacks the API to verify it
    SKIPPED = "skipped"  # an earlier step it needs failed
