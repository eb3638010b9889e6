"""Runs as users see them: submit, stop, list, show, logs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import update
from sqlalchemy.orm import Session

from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import Pipeline, Run, ScriptVersion, User
from orca_flows.domain.states import FINISHED_RUN_STATES, RunState
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.db.repositories.users import get_user
from orca_flows.errors import InvalidInputError, InvalidStateError, NotFoundError, OrcaError
from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.runners import Execution
from orca_flows.runners.factory import log_uri, runner_for, spec_for
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.links import link_access
from orca_flows.services.pipelines import get_pipeline, resolve_ordering_key
from orca_flows.settings import OrcaSettings, get_settings

__all__ = [
    "RunView",
    "Submitted",
    "get_run",
    "list_runs",
    "read_log",
    "send_run_message",
    "stop_run",
    "submit_run",
    "view_run",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submitted:
    """A submitted run: its id, and whether its queue message went out already.

    When ``message_sent`` is false the run is safely queued anyway: a worker's sweeper
    sends the message of any queued run that has none.
    """

    run_id: str
    sequence: int
    ordering_key: str
    message_sent: bool


def message_body(run_id: str) -> str:
    """The FIFO message of a run: only its id; the database holds the rest."""
    return json.dumps({"run_id": run_id})


def send_run_message(access: LinkAccess, run: Run, *, resend: bool = False) -> str:
    """Send ``run``'s FIFO message: group = ordering key, dedup id = run id.

    A re-sent message (a parked run woken up) gets a suffixed dedup id: SQS would silently
    drop a second message with the same id within its 5-minute deduplication window.
    """
    dedup_id = f"{run.id}-r{time.time_ns() // 1_000_000}" if resend else run.id
    return access.queue().send(message_body(run.id), group_id=run.ordering_key, dedup_id=dedup_id)


def submit_run(
    settings: OrcaSettings, owner_id: int, pipeline_name: str, *, requested_by: str
) -> Submitted:
    """Queue a run of the owner's pipeline: a committed Run row, then one FIFO message.

    The row is committed before the message is sent, so a crash in between leaves a queued
    run without a message (re-sent by the sweeper), never a message without a run.

    Args:
        settings: Orca's settings.
        owner_id: The pipeline's owner.
        pipeline_name: The pipeline to run (its current script version).
        requested_by: ``user:<id>``, ``schedule:<id>`` or ``api``.

    Raises:
        NotFoundError: No such pipeline for this owner.
        InvalidStateError: The pipeline has no script version.
    """
    url = settings.effective_database_url
    with session_scope(url) as session:
        owner = get_user(session, owner_id)
        if owner is None:
            raise NotFoundError("user", str(owner_id))
        pipeline = get_pipeline(session, owner, pipeline_name)
        version = _current_version(session, pipeline)
        run = runs_repo.create_run(
            session,
            owner_id=owner.id,
            pipeline_id=pipeline.id,
            script_version_id=version.id,
            ordering_key=resolve_ordering_key(pipeline),
            requested_by=requested_by,
        )
        run.s3_prefix = f"orca/{owner.id}/{pipeline.name}/runs/{run.id}/"
        link = pipeline.link
    try:
        message_id = send_run_message(link_access(link), run)
    except (BotoCoreError, ClientError, OrcaError) as error:
        logger.warning("run %s queued; its message was not sent (%s): the sweeper will", run.id, error)
        return Submitted(run.id, run.sequence, run.ordering_key, False)
    with session_scope(url) as session:
        session.execute(update(Run).where(Run.id == run.id).values(sqs_message_id=message_id))
    return Submitted(run.id, run.sequence, run.ordering_key, True)


def _current_version(session: Session, pipeline: Pipeline) -> ScriptVersion:
    version = session.query(ScriptVersion).filter_by(
        pipeline_id=pipeline.id, version=pipeline.current_version
    ).one_or_none()
    if version is None:
        raise InvalidStateError(
            f"pipeline {pipeline.name!r} has no script; upload one with `orca pipeline upload`."
        )
    return version


def get_run(session: Session, owner: User, run_id: str) -> Run:
    """The owner's run ``run_id`` (another user's run looks like none).

    Raises:
        NotFoundError: No such run.
    """
    run = runs_repo.get_run(session, run_id, owner_id=owner.id)
    if run is None:
        raise NotFoundError("run", run_id, "See `orca run list`.")
    return run


def stop_run(session: Session, owner: User, run_id: str) -> str:
    """Stop a run; returns the state it had (``queued`` or ``running``).

    A queued run is cancelled in place and never executes. A running one is marked
    stop-requested, its whole process group is killed through its runner, and it ends
    ``cancelled``; the worker watching it then releases its ordering key.

    Raises:
        NotFoundError: No such run.
        InvalidStateError: The run has already finished.
    """
    run = get_run(session, owner, run_id)
    now = utcnow()
    if run.state == RunState.QUEUED and runs_repo.compare_and_set_state(
        session, run.id, RunState.QUEUED, RunState.CANCELLED, finished_at=now,
        stop_requested_at=now, error_summary="stopped before it started",
    ):
        return RunState.QUEUED
    session.refresh(run)
    if run.state != RunState.RUNNING:
        raise InvalidStateError(
            f"run {run_id} has already finished ({run.state}); nothing to stop."
        )
    session.execute(update(Run).where(Run.id == run.id).values(stop_requested_at=now))
    if run.command_id:
        access = link_access(run.pipeline.link)
        runner = runner_for(run.pipeline, access, get_settings())
        spec = spec_for(run, run.pipeline, run.script_version, access.bucket)
        runner.stop(Execution(run.command_id, run.instance_id), spec)
    runs_repo.compare_and_set_state(
        session, run.id, RunState.RUNNING, RunState.CANCELLED, finished_at=utcnow(),
        error_summary="stopped by the user",
    )
    return RunState.RUNNING


def list_runs(
    session: Session,
    owner: User,
    *,
    pipeline: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Run]:
    """The owner's runs, newest first, filtered and paginated in the database."""
    if state is not None and state not in set(RunState):
        raise InvalidInputError("state", f"state {state!r} must be one of: {', '.join(RunState)}.")
    pipeline_id = get_pipeline(session, owner, pipeline).id if pipeline else None
    return runs_repo.list_runs(
        session, owner.id, pipeline_id=pipeline_id, state=state, since=since,
        limit=limit, offset=offset,
    )


@dataclass(frozen=True)
class RunView:
    """A run as `orca run show --json` prints it (DESIGN.md's field list)."""

    id: str
    pipeline: str
    state: str
    ordering_key: str
    sequence: int
    attempt: int
    exit_code: int | None
    requested_at: str
    requested_by: str
    started_at: str | None
    finished_at: str | None
    script_version: int
    script_sha256: str
    command_id: str | None
    instance_id: str | None
    flow_run_id: str | None
    log_uri: str
    outputs: list[str]
    error: str | None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def view_run(run: Run, *, with_outputs: bool = True) -> RunView:
    """The run's fields; ``outputs`` lists ``s3://`` URIs (one S3 listing)."""
    bucket = run.pipeline.link.bucket or ""
    outputs: list[str] = []
    if with_outputs and run.state in FINISHED_RUN_STATES:
        files = _run_files(run)
        outputs = [files.uri(key) for key in files.list("outputs/")]
    return RunView(
        id=run.id,
        pipeline=run.pipeline.name,
        state=run.state,
        ordering_key=run.ordering_key,
        sequence=run.sequence,
        attempt=run.attempt,
        exit_code=run.exit_code,
        requested_at=run.requested_at.isoformat(),
        requested_by=run.requested_by,
        started_at=_iso(run.started_at),
        finished_at=_iso(run.finished_at),
        script_version=run.script_version.version,
        script_sha256=run.script_version.sha256,
        command_id=run.command_id,
        instance_id=run.instance_id,
        flow_run_id=run.flow_run_id,
        log_uri=log_uri(run, bucket),
        outputs=outputs,
        error=run.error_summary,
    )


def _run_files(run: Run) -> PrefixedBucket:
    """The run's corner of the link's bucket: log, outputs/ and exit-code."""
    access = link_access(run.pipeline.link)
    return PrefixedBucket(access.client("s3"), access.bucket, run.s3_prefix or "")


def read_log(run: Run, *, start: int = 0) -> bytes:
    """The run's log from byte ``start`` on (empty when there is none yet)."""
    return _run_files(run).read_from("log", start)
