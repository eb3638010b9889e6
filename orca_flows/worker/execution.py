"""One run's execution as a Prefect flow run: start or resume, watch, stream the log, finish."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prefect import flow, get_run_logger
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Cancelled, State

from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.s3_layout import EXIT_CODE_KEY, LOG_KEY, split_s3_uri
from orca_flows.domain.states import FINISHED_RUN_STATES, ExecutionState, RunState
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.runners import Execution, ExecutionStatus, Runner, RunSpec
from orca_flows.runners.factory import runner_for, spec_for
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings
from orca_flows.worker import claims

__all__ = ["RunContext", "execute_run"]

# What get_run_logger() returns: the flow run's logger, forwarding to its Prefect logs.
_RunLogger = logging.Logger | logging.LoggerAdapter[logging.Logger]
# Context handed from the worker to the flow by run id (flow parameters must be plain data).
_CONTEXTS: dict[str, RunContext] = {}
_RETRY_BACKOFF_CAP_S = 60.0
# Beyond the bootstrap's own timeout, how long to wait for its marker before giving up.
_TIMEOUT_GRACE_S = 600.0
_TAKEN_OVER = "taken over by another worker after this one's lease lapsed"


@dataclass
class RunContext:
    """What the worker gives a run's flow: settings, its link access and a heartbeat."""

    settings: OrcaSettings
    worker_id: str
    access_for: Callable[[int], LinkAccess]
    heartbeat: Callable[[], Awaitable[bool]]
    resume: bool = False
    log_offset: int = field(default=0)


@dataclass(frozen=True)
class _Loaded:
    runner: Runner
    spec: RunSpec
    access: LinkAccess
    files: PrefixedBucket  # the run's S3 prefix; one client for the whole watch
    retries: int
    command_id: str | None
    instance_id: str | None
    attempt: int


def _load(context: RunContext, run_id: str) -> _Loaded:
    """Read the run's rows, then build its access, runner and spec outside the transaction
    (loading a link's block and a local runner's AssumeRole are network calls)."""
    with unit_of_work(context.settings) as session:
        run = runs_repo.get_run(session, run_id)
        assert run is not None
        # Loaded here; read detached below (the session does not expire them on commit).
        pipeline, version = run.pipeline, run.script_version
    access = context.access_for(pipeline.link_id)
    spec = spec_for(run, pipeline, version, access.bucket)
    bucket, prefix = split_s3_uri(spec.output_uri)
    return _Loaded(
        runner=runner_for(pipeline, access, context.settings),
        spec=spec,
        access=access,
        files=PrefixedBucket(access.client("s3"), bucket, prefix),
        retries=pipeline.retries,
        command_id=run.command_id,
        instance_id=run.instance_id,
        attempt=run.attempt,
    )


async def _stream_log(context: RunContext, loaded: _Loaded, logger: _RunLogger) -> None:
    """Forward the new part of the S3 log to the flow run's logs, line by line."""
    chunk = await asyncio.to_thread(loaded.files.read_from, LOG_KEY, context.log_offset)
    complete = chunk[: chunk.rfind(b"\n") + 1]  # only whole lines; the rest comes next time
    context.log_offset += len(complete)
    for line in complete.decode(errors="replace").splitlines():
        logger.info(line)


async def _watch(
    context: RunContext, run_id: str, loaded: _Loaded, execution: Execution, logger: _RunLogger
) -> ExecutionStatus:
    """Poll the execution until it ends, keeping the lease and streaming the log."""
    deadline = time.monotonic() + loaded.spec.timeout_seconds + _TIMEOUT_GRACE_S
    delay = 0.2
    while True:
        status = await asyncio.to_thread(loaded.runner.status, execution, loaded.spec)
        await _stream_log(context, loaded, logger)
        if status.finished:
            return status
        owned = await context.heartbeat()
        if await asyncio.to_thread(claims.stop_requested, context.settings, run_id):
            # Also when the stop cost us the lease: the stop may have come before the command
            # id was stored, in which case `orca run stop` had nothing to kill.
            await asyncio.to_thread(loaded.runner.stop, execution, loaded.spec)
            return ExecutionStatus(ExecutionState.CANCELLED, None, "stopped by the user")
        if not owned:
            # A worker that found our lease lapsed took the run over and watches the same
            # execution now; finish_run refuses us and the run is left to it.
            return ExecutionStatus(ExecutionState.CANCELLED, None, _TAKEN_OVER)
        if time.monotonic() > deadline:
            await asyncio.to_thread(loaded.runner.stop, execution, loaded.spec)
            return ExecutionStatus(
                ExecutionState.TIMED_OUT, None, "no exit-code marker long after the timeout"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 2.0)


async def _start_or_resume(context: RunContext, run_id: str, loaded: _Loaded) -> Execution:
    execution = None
    if context.resume:
        # A redelivered run: never send a second command; find the one already sent.
        if loaded.command_id:
            return Execution(loaded.command_id, loaded.instance_id)
        execution = await asyncio.to_thread(loaded.runner.find, loaded.spec.execution_key)
    if execution is None:
        execution = await asyncio.to_thread(loaded.runner.start, loaded.spec)
    # Stored at once, found or started: a later redelivery resumes it, never resends.
    await asyncio.to_thread(
        claims.record_execution,
        context.settings,
        run_id,
        command_id=execution.command_id,
        instance_id=execution.instance_id,
    )
    return execution


def _clear_previous_attempt(loaded: _Loaded) -> None:
    """Remove the last attempt's marker so the next attempt's status is its own."""
    loaded.files.delete(EXIT_CODE_KEY)


@flow(name="orca-run", persist_result=False, log_prints=False, validate_parameters=False)
async def execute_run(run_id: str, pipeline: str, attempt: int) -> str | State:
    """Execute (or resume) one Orca run and return its final state.

    The run's script log appears in this flow run's logs; the flow run fails when the run
    does not succeed, so the Prefect UI tells the same story as `orca run show`. A run
    taken over by another worker ends this flow run ``Cancelled``: the other worker's flow
    run tells the rest.
    """
    context = _CONTEXTS[run_id]
    logger = get_run_logger()
    await asyncio.to_thread(
        claims.record_flow_run, context.settings, run_id, str(current_flow_run.id)
    )
    loaded = await asyncio.to_thread(_load, context, run_id)
    logger.info(
        "run %s of %s, attempt %s%s",
        run_id,
        pipeline,
        loaded.attempt,
        " (resumed)" if context.resume else "",
    )
    while True:
        execution = await _start_or_resume(context, run_id, loaded)
        logger.info(
            "execution %s on %s", execution.command_id, execution.instance_id or "this host"
        )
        status = await _watch(context, run_id, loaded, execution, logger)
        retryable = status.state.retryable
        if not retryable or loaded.attempt > loaded.retries:
            break
        if await asyncio.to_thread(claims.stop_requested, context.settings, run_id):
            break
        backoff = min(2.0**loaded.attempt, _RETRY_BACKOFF_CAP_S)
        logger.warning(
            "attempt %s %s (%s); retrying in %.0f s",
            loaded.attempt,
            status.state,
            status.detail,
            backoff,
        )
        await asyncio.sleep(backoff)
        next_attempt = await asyncio.to_thread(
            claims.start_retry, context.settings, run_id, context.worker_id
        )
        if next_attempt is None:
            break
        await asyncio.to_thread(_clear_previous_attempt, loaded)
        loaded = await asyncio.to_thread(_load, context, run_id)
        context.resume = False
        context.log_offset = 0
    final = await asyncio.to_thread(
        claims.finish_run,
        context.settings,
        run_id,
        status.state.run_state(),
        worker_id=context.worker_id,
        exit_code=status.exit_code,
        error=None if status.state == ExecutionState.SUCCEEDED else status.detail,
    )
    if final not in FINISHED_RUN_STATES:
        logger.warning("run %s: %s; left to that worker", run_id, _TAKEN_OVER)
        return Cancelled(message=f"run {run_id}: {_TAKEN_OVER}")
    logger.info("run %s %s (exit code %s)", run_id, final, status.exit_code)
    if final != RunState.SUCCEEDED:
        raise RuntimeError(f"run {run_id} {final}: {status.detail or 'see its log'}")
    return final
