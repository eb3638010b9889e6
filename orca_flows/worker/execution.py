"""One run's execution as a Prefect flow run: start or resume, watch, stream the log, finish.

The whole flow is covered by the lease: a keeper task renews it (and the message's
visibility) while the run is loaded, started, watched, killed, and while it waits between
attempts. A start that cannot succeed (see ``start_failures``) fails the attempt with the
cause and the fix; a transient one is tried again, keeping the lease, and never fails the
run. A stop makes the run ``cancelling``: the execution is killed and the run finishes
``cancelled`` only once its process is confirmed dead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from prefect import flow, get_run_logger
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Cancelled, Completed, Failed, State

from orca_flows.domain.limits import BOOTSTRAP_MARGIN_SECONDS
from orca_flows.domain.s3_layout import LOG_KEY
from orca_flows.domain.states import FINISHED_RUN_STATES, ExecutionState, RunState
from orca_flows.errors import InvalidStateError, OrcaError
from orca_flows.prefect_adapter import flow_runs
from orca_flows.runners import Execution, ExecutionStatus
from orca_flows.services.lookup import actor_of
from orca_flows.services.run_reports import publish_run_artifacts, report_run
from orca_flows.services.run_stop import STOPPED_BY_USER, KillOutcome, kill_and_confirm, stop_run
from orca_flows.settings import get_settings
from orca_flows.worker import claims
from orca_flows.worker.attempt_start import (
    LoadedRun,
    RunRows,
    StartError,
    build,
    guarded,
    read_rows,
    start_or_resume,
)
from orca_flows.worker.run_context import WORKER_CONTEXT, RunContext, claim_standalone
from orca_flows.worker.start_failures import cannot_start, is_transient
from orca_flows.worker.sweeper import Sweeper

__all__ = ["RunContext", "execute_run"]

# What get_run_logger() returns: the flow run's logger, forwarding to its Prefect logs.
_RunLogger = logging.Logger | logging.LoggerAdapter[logging.Logger]
_RETRY_BACKOFF_CAP_S = 60.0
# Beyond the bootstrap's own timeout, how long to wait for its marker before giving up:
# all the bootstrap may take after its script (uploads included), so a script that
# succeeded just inside its timeout is never cut off while uploading (domain.limits).
_TIMEOUT_GRACE_S = float(BOOTSTRAP_MARGIN_SECONDS)
# How long an execution may stay undelivered beyond its budget before Orca gives up on
# it (SSM's own delivery timeout normally ends it first).
_UNDELIVERED_SLACK_S = 3600.0
_KEEPER_TICK_S = 0.5  # the heartbeat itself decides when a renewal is due
_TAKEN_OVER = "taken over by another worker after this one's lease lapsed"
# How often the flow run's own state is read, to act on a cancel asked in Prefect.
_CANCEL_POLL_S = 2.0


@dataclass(frozen=True)
class _Left:
    """The flow lets the run go without finishing it (another worker or a later try will)."""

    reason: str


async def _keep_lease(context: RunContext, run_id: str, logger: _RunLogger) -> None:
    """Renew the lease for as long as the flow runs; flag it when another worker has it."""
    while True:
        try:
            owned = await context.heartbeat()
        except Exception as error:  # the database briefly away: try again next tick
            logger.warning("run %s: lease not renewed (%s)", run_id, error)
        else:
            if not owned:
                context.lease_lost.set()
                return
        await asyncio.sleep(_KEEPER_TICK_S)


async def _follow_cancel(
    context: RunContext, run_id: str, flow_run_id: str, owner_id: int, logger: _RunLogger
) -> None:
    """Stop the run like `orca run stop` (as its owner) once its flow run is put in
    Cancelling or Cancelled in Prefect.

    An in-process flow has no runner to act on Prefect's cancel (the engine only reports a
    cancellation it is told of), so the flow run would otherwise stay Cancelling while the
    script runs on. The stop makes the run ``cancelling``; the watch loop kills the process,
    confirms it gone, and the flow run ends Cancelled.
    """
    while not await flow_runs.cancel_requested(flow_run_id):
        await asyncio.sleep(_CANCEL_POLL_S)
    logger.info("run %s: flow run %s cancelled in Prefect; stopping the run", run_id, flow_run_id)
    try:
        actor = await asyncio.to_thread(actor_of, context.settings, owner_id)
        await asyncio.to_thread(stop_run, context.settings, actor, run_id)
    except InvalidStateError:
        pass  # it finished meanwhile: its final state stands
    except OrcaError as error:
        logger.warning("run %s: stop not requested (%s)", run_id, error)


async def _report(context: RunContext, run_id: str) -> None:
    """Emit the run's current state as a Prefect event (best effort, in a thread)."""
    await asyncio.to_thread(report_run, context.settings, run_id)


async def _stopped(context: RunContext, run_id: str) -> bool:
    return await asyncio.to_thread(claims.stop_requested, context.settings, run_id)


async def _pause(context: RunContext, run_id: str, seconds: float) -> _Left | bool:
    """Wait ``seconds`` (the keeper renews the lease meanwhile); ``True`` when a stop came,
    a ``_Left`` when the lease was lost, ``False`` when the wait is over."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if context.lease_lost.is_set():
            return _Left(_TAKEN_OVER)
        if await _stopped(context, run_id):
            return True
        await asyncio.sleep(min(remaining, 1.0))
    return False


async def _stream_log(context: RunContext, loaded: LoadedRun, logger: _RunLogger) -> None:
    """Forward the new part of the attempt's S3 log to the flow run's logs, line by line."""
    chunk = await asyncio.to_thread(loaded.files.read_from, LOG_KEY, context.log_offset)
    complete = chunk[: chunk.rfind(b"\n") + 1]  # only whole lines; the rest comes next time
    context.log_offset += len(complete)
    for line in complete.decode(errors="replace").splitlines():
        logger.info(line)


async def _kill(context: RunContext, loaded: LoadedRun, execution: Execution | None) -> KillOutcome:
    """Kill the attempt's execution and wait (bounded) until it is confirmed over."""
    return await asyncio.to_thread(
        kill_and_confirm,
        loaded.runner,
        execution,
        loaded.spec,
        within=context.settings.stop_confirm_seconds,
    )


async def _stop(
    context: RunContext, run_id: str, loaded: LoadedRun, execution: Execution | None
) -> ExecutionStatus | _Left:
    """Kill the execution and wait until its process is confirmed dead."""
    outcome = await _kill(context, loaded, execution)
    if outcome.confirmed:
        exit_code = outcome.status.exit_code if outcome.status else None
        return ExecutionStatus(ExecutionState.CANCELLED, exit_code, STOPPED_BY_USER)
    await asyncio.to_thread(
        claims.leave_cancelling, context.settings, run_id, context.worker_id, outcome.detail
    )
    return _Left(outcome.detail)


async def _watch(
    context: RunContext, run_id: str, loaded: LoadedRun, execution: Execution, logger: _RunLogger
) -> ExecutionStatus | _Left:
    """Poll the execution until it ends (or is stopped and confirmed dead), streaming the log."""
    # The timeout counts from when the execution is first seen running: SSM may hold a
    # command undelivered ("Delayed") for its delivery timeout, and that wait is SSM's to
    # end (TimedOut), not a script that ran too long.
    budget = loaded.spec.timeout_seconds + _TIMEOUT_GRACE_S
    deadline = time.monotonic() + budget + _UNDELIVERED_SLACK_S
    seen_running = False
    delay = 0.2
    while True:
        try:
            status = await asyncio.to_thread(loaded.runner.status, execution, loaded.spec)
            await _stream_log(context, loaded, logger)
        except Exception as error:
            if not is_transient(error):
                # Orca can no longer see the run (access denied, say): it fails only once
                # its process is confirmed dead, else its key would overlap the next run.
                logger.error("run %s cannot be watched: %s", run_id, error)
                return await _lost_sight(context, run_id, loaded, execution, error)
            logger.warning("run %s: status not read (%s); trying again", run_id, error)
        else:
            if status.finished:
                return status
            if status.state == ExecutionState.RUNNING and not seen_running:
                seen_running = True
                deadline = time.monotonic() + budget
        if context.lease_lost.is_set():
            # A worker that found our lease lapsed took the run over and watches the same
            # execution now; finish_run refuses us and the run is left to it.
            return _Left(_TAKEN_OVER)
        if await _stopped(context, run_id):
            logger.info("run %s: stop requested; killing its process", run_id)
            return await _stop(context, run_id, loaded, execution)
        if time.monotonic() > deadline:
            await asyncio.to_thread(loaded.runner.stop, execution, loaded.spec)
            return ExecutionStatus(
                ExecutionState.TIMED_OUT, None, "no exit-code marker long after the timeout"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 2.0)


async def _lost_sight(
    context: RunContext, run_id: str, loaded: LoadedRun, execution: Execution, error: Exception
) -> ExecutionStatus | _Left:
    """A started run Orca can no longer watch: kill it; fail it once its process is gone,
    or keep it ``cancelling`` with the reason (its key waits) when that cannot be confirmed."""
    summary = f"Orca could not watch the running script: {cannot_start(error)}"
    outcome = await _kill(context, loaded, execution)
    if outcome.confirmed:
        return ExecutionStatus(ExecutionState.FAILED, None, summary)
    reason = f"{summary} Its process could not be confirmed dead ({outcome.detail})."
    await asyncio.to_thread(
        claims.give_up_watching, context.settings, run_id, context.worker_id, reason
    )
    return _Left(reason)


async def _attempt(
    context: RunContext, run_id: str, rows: RunRows, logger: _RunLogger
) -> ExecutionStatus | _Left:
    """Start (or resume) the run's current attempt and watch it to its end."""
    delay = 1.0
    built: LoadedRun | None = None
    while True:
        try:
            built = loaded = await asyncio.to_thread(guarded, build, context, rows)
            started = await start_or_resume(context, run_id, loaded)
            break
        except StartError as wrapped:
            error = wrapped.error
            if not is_transient(error):
                summary = cannot_start(error)
                logger.error("run %s attempt %s: %s", run_id, rows.run.attempt, summary)
                return ExecutionStatus(ExecutionState.FAILED, None, summary)
            logger.warning(
                "run %s attempt %s could not start yet (%s); trying again in %.0f s",
                run_id,
                rows.run.attempt,
                error,
                delay,
            )
            early = await _pause(context, run_id, delay)
            if isinstance(early, _Left):
                return early
            if early:
                if built is None:  # nothing could have been started
                    return ExecutionStatus(ExecutionState.CANCELLED, None, STOPPED_BY_USER)
                # A start whose answer was lost may have sent all the same: find it, kill it.
                return await _stop(context, run_id, built, None)
            delay = min(delay * 2, _RETRY_BACKOFF_CAP_S)
    if isinstance(started, ExecutionStatus):
        return started
    logger.info("execution %s on %s", started.command_id, started.instance_id or "this host")
    await _report(context, run_id)  # the start is recorded: the run is running
    return await _watch(context, run_id, loaded, started, logger)


async def _execute(context: RunContext, run_id: str, pipeline: str, logger: _RunLogger) -> State:
    rows = await asyncio.to_thread(read_rows, context, run_id)
    logger.info(
        "run %s of %s, attempt %s%s",
        run_id,
        pipeline,
        rows.run.attempt,
        " (resumed)" if context.resume else "",
    )
    while True:
        outcome = await _attempt(context, run_id, rows, logger)
        if isinstance(outcome, _Left):
            logger.warning("run %s: %s; left for later", run_id, outcome.reason)
            return Cancelled(message=f"run {run_id}: {outcome.reason}")
        status = outcome
        if not status.state.retryable or rows.run.attempt > rows.pipeline.retries:
            break
        backoff = min(2.0**rows.run.attempt, _RETRY_BACKOFF_CAP_S)
        logger.warning(
            "attempt %s %s (%s); retrying in %.0f s",
            rows.run.attempt,
            status.state,
            status.detail,
            backoff,
        )
        early = await _pause(context, run_id, backoff)
        if isinstance(early, _Left):
            return Cancelled(message=f"run {run_id}: {early.reason}")
        if early:  # stopped during the backoff: no further attempt
            status = ExecutionStatus(ExecutionState.CANCELLED, status.exit_code, STOPPED_BY_USER)
            break
        if (
            await asyncio.to_thread(claims.start_retry, context.settings, run_id, context.worker_id)
            is None
        ):
            break
        rows = await asyncio.to_thread(read_rows, context, run_id)
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
    await _report(context, run_id)
    detail = STOPPED_BY_USER if final == RunState.CANCELLED else status.detail
    return final_state(run_id, final, detail, status.exit_code)


def final_state(
    run_id: str, final: RunState, detail: str | None, exit_code: int | None = None
) -> State:
    """The Prefect state a flow run ends in for an Orca run that ended ``final``.

    ``timed_out`` is a Failed state named TimedOut (Prefect's own name for a timeout).
    """
    reason = detail or "see its log"
    if final == RunState.SUCCEEDED:
        return Completed(message=f"run {run_id} succeeded (exit code {exit_code})")
    if final == RunState.CANCELLED:
        return Cancelled(message=f"run {run_id} cancelled: {reason}")
    if final == RunState.TIMED_OUT:
        return Failed(name="TimedOut", message=f"run {run_id} timed out: {reason}")
    return Failed(message=f"run {run_id} {final} (exit code {exit_code}): {reason}")


@flow(name="orca-run", persist_result=False, log_prints=False, validate_parameters=False)
async def execute_run(run_id: str, pipeline: str = "", attempt: int = 0) -> State:
    """Execute (or resume) one Orca run; the flow run ends in the state matching the run's.

    ``pipeline`` and ``attempt`` are informational (flow run parameters in the UI). The
    run's script log appears in this flow run's logs; it ends Completed, Failed, Failed
    named TimedOut or Cancelled, as the run does. A run taken over by another worker (or
    left ``cancelling`` because its process could not be confirmed dead) ends this flow
    run ``Cancelled``: a later flow run tells the rest.

    Started from Prefect (UI, CLI, a retry) rather than by `orca worker`, it claims the
    run itself; a finished run returns its final state and runs nothing; a run another
    worker holds fails this flow run with who holds it.
    """
    logger = get_run_logger()
    flow_run_id = str(current_flow_run.id)
    context = WORKER_CONTEXT.get()
    if context is None:
        settings = get_settings()
        claimed = await asyncio.to_thread(claim_standalone, settings, run_id, flow_run_id)
        if claimed.context is None:
            assert claimed.final is not None
            logger.info("run %s has already finished (%s); nothing to run", run_id, claimed.final)
            return final_state(run_id, claimed.final, "finished before this flow run")
        context = claimed.context
    keeper = asyncio.create_task(_keep_lease(context, run_id, logger))
    watcher: asyncio.Task[None] | None = None
    labels: claims.RunLabels | None = None
    try:
        earlier = await asyncio.to_thread(
            claims.record_flow_run, context.settings, run_id, flow_run_id
        )
        if context.resume and earlier:
            # Their workers died (that is why the lease lapsed): no engine is left to end them.
            await flow_runs.crash_stale_flow_runs(
                earlier, f"its worker stopped; run {run_id} was resumed by flow run {flow_run_id}"
            )
        labels = await asyncio.to_thread(claims.run_labels, context.settings, run_id)
        if labels is not None:
            watcher = asyncio.create_task(
                _follow_cancel(context, run_id, flow_run_id, labels.owner_id, logger)
            )
        name = labels.pipeline if labels is not None else pipeline
        state = await _execute(context, run_id, name, logger)
    finally:
        keeper.cancel()
        if watcher is not None:
            watcher.cancel()
    if not await asyncio.to_thread(claims.is_finished, context.settings, run_id):
        return state  # left to another worker: its flow run publishes the artifacts
    if not state.is_cancelled() and await flow_runs.cancel_requested(flow_run_id):
        # A cancel that came as the run ended: Prefect takes only Cancelled from Cancelling.
        state = Cancelled(message=f"cancel requested as the run ended; {state.message}")
    await publish_run_artifacts(context.settings, run_id, flow_run_id)
    if context.standalone and labels is not None:
        # No worker holds the run's message (the worker that receives it drops it now):
        # wake the key's next run at once, as a worker does, rather than wait for a sweep.
        sweeper = Sweeper(context.settings, context.access_for)
        await asyncio.to_thread(sweeper.wake, labels.ordering_key)
    return state
