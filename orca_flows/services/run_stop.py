"""Stopping a run: the stop is recorded first, then its runner kills it with no transaction open."""

from __future__ import annotations

from dataclasses import dataclass

from orca_flows.db.base import utcnow
from orca_flows.db.models import CloudLink, Pipeline
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import RunState
from orca_flows.errors import InvalidStateError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.runners import Execution, RunSpec
from orca_flows.runners.factory import runner_for, spec_for
from orca_flows.services.links import link_access
from orca_flows.services.lookup import get_run
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["stop_run"]

logger = get_logger(__name__)


@dataclass(frozen=True)
class _Kill:
    """What the runner needs to kill a running execution, read inside the first unit."""

    pipeline: Pipeline  # detached, every column loaded
    link: CloudLink  # detached, every column loaded
    execution: Execution
    spec: RunSpec


def _request_stop(settings: OrcaSettings, actor: Actor, run_id: str) -> RunState | _Kill | None:
    """Unit 1: cancel a queued run in place, or record the stop of a running one.

    Returns:
        ``RunState.QUEUED`` when the run was queued (it is cancelled now); for a running
        run, what the runner needs to kill it, or ``None`` when no execution has started.
    """
    with unit_of_work(settings) as session:
        run = get_run(session, actor, run_id)
        now = utcnow()
        if run.state == RunState.QUEUED and runs_repo.compare_and_set_state(
            session,
            run.id,
            RunState.QUEUED,
            RunState.CANCELLED,
            finished_at=now,
            stop_requested_at=now,
            error_summary="stopped before it started",
        ):
            return RunState.QUEUED
        if not runs_repo.mark_stop_requested(session, run.id, now):
            raise InvalidStateError(
                f"run {run_id} has already finished ({run.state}); nothing to stop."
            )
        # Read again (the writes above expired the rows) and build the spec here, which
        # loads every column the runner reads once the unit has ended.
        run = get_run(session, actor, run_id)
        if run.command_id is None:
            return None  # the worker starting it sees the request and never starts it
        pipeline, link = run.pipeline, run.pipeline.link
        spec = spec_for(run, pipeline, run.script_version, link.bucket or "")
        return _Kill(pipeline, link, Execution(run.command_id, run.instance_id), spec)


def stop_run(settings: OrcaSettings, actor: Actor, run_id: str) -> RunState:
    """Stop a run; returns the state it had (``queued`` or ``running``).

    A queued run is cancelled in place and never executes. A running one is stopped in
    three steps: a unit records the request (``stop_requested_at``); with no transaction
    open, its runner kills the script's whole process group (SSM or a local kill, up to
    seconds); a second unit moves it ``running`` → ``cancelled``. A crash between the
    steps still ends the run: the worker watching it sees the request, kills the
    execution itself and finishes the run ``cancelled`` (a stop wins over an exit code),
    then releases its ordering key.

    Raises:
        NotFoundError: No such run (or another user's).
        InvalidStateError: The run has already finished.
    """
    requested = _request_stop(settings, actor, run_id)
    if requested is RunState.QUEUED:
        return RunState.QUEUED
    if isinstance(requested, _Kill):
        with prefect_api(settings):
            access = link_access(requested.link)
            runner = runner_for(requested.pipeline, access, settings)
            runner.stop(requested.execution, requested.spec)
    with unit_of_work(settings) as session:
        if not runs_repo.compare_and_set_state(
            session,
            run_id,
            RunState.RUNNING,
            RunState.CANCELLED,
            finished_at=utcnow(),
            error_summary="stopped by the user",
        ):
            logger.info("run %s ended before its stop was recorded; the worker finished it", run_id)
    return RunState.RUNNING
