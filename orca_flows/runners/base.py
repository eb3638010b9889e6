"""What every runner offers (the Runner protocol) and the polling loop both runners share."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from orca_flows.runners.spec import Execution, ExecutionStatus, RunSpec

__all__ = ["Backoff", "Runner", "wait_for_execution"]


@dataclass(frozen=True)
class Backoff:
    """Delays between status polls: ``first``, then times ``factor``, never above ``cap``."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 15.0

    def delays(self) -> Callable[[], float]:
        """A function returning the next delay each time it is called."""
        current = self.first

        def next_delay() -> float:
            nonlocal current
            delay, current = current, min(current * self.factor, self.cap)
            return delay

        return next_delay


class Runner(Protocol):
    """Starts the bootstrap somewhere and answers for it; ``LocalRunner`` and ``SsmRunner``."""

    backoff: Backoff

    def start(self, spec: RunSpec) -> Execution:
        """Start ``spec``'s attempt unless it was started already; either way return its
        execution. Records ``spec.execution_key`` where ``find`` looks before the script
        can start, so no sequence of worker deaths runs an attempt twice."""
        ...

    def find(self, execution_key: str) -> Execution | None:
        """The execution started for ``execution_key`` (a spec's), if any."""
        ...

    def finished(self, spec: RunSpec) -> ExecutionStatus | None:
        """The attempt's final status from its exit-code marker in S3, ``None`` until it
        is written: a resumed attempt whose marker is there is over, never started again."""
        ...

    def status(self, execution: Execution, spec: RunSpec) -> ExecutionStatus:
        """Where ``execution`` stands now."""
        ...

    def stop(self, execution: Execution, spec: RunSpec) -> None:
        """Stop ``execution``: its script and every process the script started."""
        ...


def wait_for_execution(
    runner: Runner,
    execution: Execution,
    spec: RunSpec,
    *,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ExecutionStatus:
    """Poll ``runner.status`` with ``runner.backoff`` until the execution is finished.

    Args:
        runner: The runner that started ``execution``.
        execution: What to watch.
        spec: The run it executes.
        timeout: Seconds to wait at most; ``None`` waits as long as it takes.
        sleep: Injected for tests.
        clock: Injected for tests.

    Returns:
        The final status, or the latest (not finished) one when ``timeout`` ran out:
        check ``.finished``.
    """
    deadline = None if timeout is None else clock() + timeout
    next_delay = runner.backoff.delays()
    while True:
        status = runner.status(execution, spec)
        if status.finished:
            return status
        delay = next_delay()
        if deadline is not None:
            remaining = deadline - clock()
            if remaining <= 0:
                return status
            delay = min(delay, remaining)
        sleep(delay)
