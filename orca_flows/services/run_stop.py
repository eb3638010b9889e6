"""Stopping a run: the stop is recorded first, then its process is killed and confirmed dead.

A queued run has no process: it is cancelled in place. A running run becomes
``cancelling`` and stays so until its process is confirmed gone (the execution is over as
its runner sees it: the local bootstrap has exited, or SSM reports the invocation over
and the bootstrap's marker says so); only then is it ``cancelled``, which releases the
next run of its ordering key. The worker that holds the run's lease does the kill and
the confirmation; with no live lease (its worker died), `orca run stop` does them itself.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from orca_flows.db.base import utcnow
from orca_flows.db.models import CloudLink, Pipeline
from orca_flows.db.repositories import dispatch as dispatch_repo
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import RunState
from orca_flows.errors import InvalidStateError, OrcaError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.flow_runs import cancel_stale_flow_runs
from orca_flows.runners import Execution, ExecutionStatus, Runner, RunSpec, wait_for_execution
from orca_flows.runners.factory import runner_for, spec_for
from orca_flows.services.links import link_access
from orca_flows.services.lookup import get_run
from orca_flows.services.run_reports import report_run
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["STOPPED_BY_USER", "KillOutcome", "kill_and_confirm", "stop_run"]

logger = get_logger(__name__)

STOPPED_BY_USER = dispatch_repo.STOPPED_BY_USER
# What a kill that did not happen raises (anything else is a crash: it propagates, and the
# run stays `cancelling` for the worker that takes it over).
_KILL_FAILURES = (OrcaError, BotoCoreError, ClientError, OSError, subprocess.SubprocessError)


@dataclass(frozen=True)
class KillOutcome:
    """What a kill achieved.

    Attributes:
        confirmed: The process is gone (or never started): the run may end ``cancelled``.
        status: The execution's last status, when there was an execution.
        detail: Why death is not confirmed, as the run's error summary (empty if it is).
    """

    confirmed: bool
    status: ExecutionStatus | None = None
    detail: str = ""


def kill_and_confirm(
    runner: Runner, execution: Execution | None, spec: RunSpec, *, within: float
) -> KillOutcome:
    """Kill ``spec``'s attempt and wait up to ``within`` seconds until it is over.

    With no ``execution`` (a stop that came before its command id was recorded), the
    execution is looked up by the attempt's key (the SSM Comment, the local record)
    first. Blocking (seconds, up to ``within``): call it with no transaction open.
    """
    if execution is None:
        execution = runner.find(spec.execution_key)
    if execution is None:
        # Nothing started this attempt (starts are recorded before the script can run).
        return KillOutcome(True, runner.finished(spec))
    try:
        runner.stop(execution, spec)
    except _KILL_FAILURES as error:  # the kill failed (AWS refused it, say): not confirmed
        return KillOutcome(False, None, f"stop requested, but the kill failed: {error}")
    status = wait_for_execution(runner, execution, spec, timeout=within)
    if status.finished:
        return KillOutcome(True, status)
    return KillOutcome(
        False,
        status,
        f"stop requested, but the run's process could not be confirmed dead within "
        f"{within:.0f} s (it is {status.state}{': ' + status.detail if status.detail else ''}); "
        f"the next runs of its key wait. Check the host, then run `orca run stop {spec.run_id}` "
        "again.",
    )


@dataclass(frozen=True)
class _Kill:
    """What the runner needs to kill a running execution, read inside the first unit."""

    pipeline: Pipeline  # detached, every column loaded
    link: CloudLink  # detached, every column loaded
    execution: Execution | None
    spec: RunSpec
    held: bool  # a live worker's lease: that worker kills, confirms and finishes
    was: RunState  # running, or cancelling (a stop asked before)


def _request_stop(settings: OrcaSettings, actor: Actor, run_id: str) -> RunState | _Kill:
    """Unit 1: cancel a queued run in place, or mark a running one ``cancelling``.

    Returns:
        ``RunState.QUEUED`` when the run was queued (it is cancelled now); for a running
        run, what is needed to kill it.

    Raises:
        InvalidStateError: The run has finished (also when it finished just now, before
            the stop could be recorded).
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
        was = run.state
        if not runs_repo.mark_stop_requested(session, run.id, now):
            # Read again: the state seen above may be the one a finishing worker just left.
            final = get_run(session, actor, run_id).state
            raise InvalidStateError(
                f"run {run_id} has already finished ({final}); nothing to stop."
            )
        # Read again (the writes above expired the rows) and build the spec here, which
        # loads every column the runner reads once the unit has ended.
        run = get_run(session, actor, run_id)
        pipeline, link = run.pipeline, run.pipeline.link
        spec = spec_for(run, pipeline, run.script_version, link.bucket or "")
        held = run.lease_expires_at is not None and run.lease_expires_at > now
        execution = Execution(run.command_id, run.instance_id) if run.command_id else None
        return _Kill(pipeline, link, execution, spec, held, RunState(was))


def stop_run(settings: OrcaSettings, actor: Actor, run_id: str) -> RunState:
    """Stop a run; returns the state it had (``queued``, ``running`` or ``cancelling``).

    A queued run is cancelled in place and never executes. A running one becomes
    ``cancelling`` at once (unit 1). The worker holding its lease sees that, kills the
    execution, waits until the process is confirmed dead and finishes the run
    ``cancelled``, which releases the next run of its key. With no live lease (the worker
    died), this call does it: with no transaction open, the runner finds the execution
    (by its command id, or by the attempt's key when the id was never recorded), kills
    it and waits up to ``stop_confirm_seconds`` for it to end; a last unit finishes the
    run ``cancelled``, or leaves it ``cancelling`` with the reason when death could not
    be confirmed. A crash in between leaves it ``cancelling``, for the next worker that
    takes the run over (or another stop) to finish.

    Raises:
        NotFoundError: No such run (or another user's).
        InvalidStateError: The run has already finished.
    """
    requested = _request_stop(settings, actor, run_id)
    if not isinstance(requested, _Kill):
        report_run(settings, run_id)  # orca.run.cancelled: no worker will report it
        _end_flow_runs(settings, run_id)
        return requested
    if requested.held:
        return requested.was
    with prefect_api(settings):
        # A kill is never refused (the local-runner rule is about starting scripts).
        runner = runner_for(
            requested.pipeline, link_access(requested.link), settings, stopping=True
        )
        outcome = kill_and_confirm(
            runner, requested.execution, requested.spec, within=settings.stop_confirm_seconds
        )
    cancelled = False
    with unit_of_work(settings) as session:
        if not outcome.confirmed:
            dispatch_repo.leave_cancelling(session, run_id, outcome.detail)
        elif not runs_repo.compare_and_set_state(
            session,
            run_id,
            RunState.CANCELLING,
            RunState.CANCELLED,
            finished_at=utcnow(),
            error_summary=STOPPED_BY_USER,
            exit_code=outcome.status.exit_code if outcome.status else None,
            lease_owner=None,
            lease_expires_at=None,
        ):
            logger.info("run %s: a worker finished it meanwhile", run_id)
        else:
            cancelled = True
    if cancelled:
        report_run(settings, run_id)  # orca.run.cancelled (the worker that would is gone)
        _end_flow_runs(settings, run_id)
    return requested.was


def _end_flow_runs(settings: OrcaSettings, run_id: str) -> None:
    """End ``Cancelled`` the flow runs a gone worker left unfinished for a run stopped here.

    Only for a run this call finished: a live worker's flow run ends Cancelled itself.
    """
    with unit_of_work(settings) as session:
        flow_run_ids = runs_repo.flow_run_ids(session, run_id)
    with prefect_api(settings):  # best effort: logged, never raised
        cancel_stale_flow_runs(flow_run_ids, f"run {run_id} stopped; its worker was gone")
