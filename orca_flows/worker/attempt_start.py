"""Loading a run's attempt and starting it exactly once (or finding the one started).

The start is recorded before anything can run twice: the runners record the attempt's
execution key (the SSM ``Comment``, the local runner's record) before they start, the
worker stores the command id the moment it exists (fenced by its lease and the attempt),
and a resume looks for the recorded execution, then the key, then the attempt's exit
marker, and starts only when none exists.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.db.models import Pipeline, Run, ScriptVersion
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.s3_layout import split_s3_uri
from orca_flows.domain.states import ExecutionState
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.runners import Execution, ExecutionStatus, Runner, RunSpec
from orca_flows.runners.factory import check_can_start, runner_for, spec_for
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.worker import claims
from orca_flows.worker.run_context import RunContext

__all__ = [
    "LoadedRun",
    "RunRows",
    "StartError",
    "build",
    "guarded",
    "read_rows",
    "start_or_resume",
]

logger = get_logger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class RunRows:
    """The run's rows, read in one unit and detached (their columns only)."""

    run: Run
    pipeline: Pipeline
    version: ScriptVersion


@dataclass(frozen=True)
class LoadedRun:
    runner: Runner
    spec: RunSpec
    pipeline: Pipeline  # detached
    access: LinkAccess
    files: PrefixedBucket  # the attempt's S3 folder; one client for the whole watch
    command_id: str | None
    instance_id: str | None


class StartError(Exception):
    """An error of the start itself (not of Orca's own bookkeeping), to be classified."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def guarded(call: Callable[..., _T], *args: Any) -> _T:
    """``call(*args)``, its error wrapped as a ``StartError``: only those can fail a start,
    never a database error while recording (the execution may be running then)."""
    try:
        return call(*args)
    except Exception as error:
        raise StartError(error) from error


def read_rows(context: RunContext, run_id: str) -> RunRows:
    with unit_of_work(context.settings) as session:
        run = runs_repo.get_run(session, run_id)
        assert run is not None
        # Loaded here; read detached below (the session does not expire them on commit).
        return RunRows(run, run.pipeline, run.script_version)


def build(context: RunContext, rows: RunRows) -> LoadedRun:
    """The run's access, runner and spec, outside any transaction (loading a link's block
    and an AssumeRole are network calls); raises what stops a start."""
    access = context.access_for(rows.pipeline.link_id)
    spec = spec_for(rows.run, rows.pipeline, rows.version, access.bucket)
    if rows.run.parameters:
        # The run's own parameters override the pipeline's environment, key by key
        # (replace() checks the merged environment again).
        spec = replace(spec, environment=spec.environment | dict(rows.run.parameters))
    # Watching or killing an execution is never refused; a new start is checked below.
    runner = runner_for(rows.pipeline, access, context.settings, stopping=True)
    bucket, prefix = split_s3_uri(spec.attempt_uri)
    return LoadedRun(
        runner=runner,
        spec=spec,
        pipeline=rows.pipeline,
        access=access,
        files=PrefixedBucket(access.client("s3"), bucket, prefix),
        command_id=rows.run.command_id,
        instance_id=rows.run.instance_id,
    )


def _check_script(loaded: LoadedRun) -> None:
    """A missing or unreadable script fails the start with its cause, before anything is
    sent (checked for new starts only: a resumed execution has its copy already)."""
    bucket, key = split_s3_uri(loaded.spec.script_uri)
    loaded.access.client("s3").head_object(Bucket=bucket, Key=key)


def _start_and_record(context: RunContext, run_id: str, loaded: LoadedRun) -> Execution:
    guarded(check_can_start, loaded.pipeline, context.settings)
    guarded(_check_script, loaded)
    execution = guarded(loaded.runner.start, loaded.spec)
    # Stored at once: a later redelivery resumes it, never resends.
    _record(context, run_id, loaded, execution)
    return execution


def _record(context: RunContext, run_id: str, loaded: LoadedRun, execution: Execution) -> None:
    if not claims.record_execution(
        context.settings,
        run_id,
        worker_id=context.worker_id,
        attempt=loaded.spec.attempt,
        command_id=execution.command_id,
        instance_id=execution.instance_id,
    ):
        # Our lease is gone: the run's new owner finds this execution by its key.
        logger.warning("run %s: execution %s not recorded (lease lost)", run_id, execution)


async def start_or_resume(
    context: RunContext, run_id: str, loaded: LoadedRun
) -> Execution | ExecutionStatus:
    """The attempt's execution: the recorded one, the one found by the attempt's key, its
    exit marker (the attempt is over), or, only if there is none of these, a new start."""
    if loaded.command_id:
        return Execution(loaded.command_id, loaded.instance_id)
    if context.resume:
        found = await asyncio.to_thread(guarded, loaded.runner.find, loaded.spec.execution_key)
        if found is not None:
            await asyncio.to_thread(_record, context, run_id, loaded, found)
            return found
        final = await asyncio.to_thread(guarded, loaded.runner.finished, loaded.spec)
        if final is not None:
            return final
    if await asyncio.to_thread(claims.stop_requested, context.settings, run_id):
        return ExecutionStatus(ExecutionState.CANCELLED, None, "stopped before it started")
    # Shielded: a SIGTERM (the worker cancelling us) waits until the execution is recorded.
    start = asyncio.ensure_future(asyncio.to_thread(_start_and_record, context, run_id, loaded))
    try:
        return await asyncio.shield(start)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await start
        raise
