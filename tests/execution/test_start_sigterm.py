"""A worker told to stop (SIGTERM) while it starts a run records the execution before it
lets the run go: the next worker resumes it instead of starting a second copy."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from orca_flows.runners import Execution, RunSpec
from orca_flows.settings import get_settings
from orca_flows.worker import attempt_start, claims
from orca_flows.worker.run_context import RunContext, cancel_and_wait

SPEC = RunSpec(
    run_id="3f1c2b1e-0000-4000-8000-000000000001",
    pipeline="etl",
    script_uri="s3://bucket/orca/1/etl/scripts/v1/job.sh",
    script_sha256="0" * 64,
    script_name="job.sh",
    output_uri="s3://bucket/orca/1/etl/runs/3f1c2b1e-0000-4000-8000-000000000001/",
    timeout_seconds=60,
)


class _SlowRunner:
    """Starts take until ``release`` is set (SendCommand on a slow day)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def start(self, spec: RunSpec) -> Execution:
        self.entered.set()
        self.release.wait(10)
        return Execution("cmd-1", "i-1")


class _Access:
    """The link's clients: the script is there (HeadObject answers)."""

    def client(self, service: str) -> Any:
        return self

    def head_object(self, **_: Any) -> dict[str, Any]:
        return {}


def test_a_start_cancelled_midway_is_recorded_before_the_task_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorded: list[str] = []
    monkeypatch.setattr(claims, "stop_requested", lambda *_: False)
    monkeypatch.setattr(
        claims, "record_execution", lambda *_, command_id, **__: recorded.append(command_id)
    )
    runner = _SlowRunner()

    async def heartbeat() -> bool:
        return True

    async def scenario() -> None:
        context = RunContext(get_settings(), "w1", lambda _: None, heartbeat)  # type: ignore[arg-type,return-value]
        pipeline = SimpleNamespace(runner="ssm")  # nothing to refuse: not the local runner
        loaded: Any = attempt_start.LoadedRun(runner, SPEC, pipeline, _Access(), None, None, None)  # type: ignore[arg-type]
        task = asyncio.create_task(attempt_start.start_or_resume(context, SPEC.run_id, loaded))
        await asyncio.to_thread(runner.entered.wait, 10)
        # The worker's shutdown: cancel, and wait for the task to let go. The start
        # answers only after the cancel.
        threading.Timer(0.3, runner.release.set).start()
        await cancel_and_wait(task)  # type: ignore[arg-type]
        assert task.cancelled()

    asyncio.run(scenario())

    assert recorded == ["cmd-1"], "the start was let go before its execution was recorded"
