"""Runs as users see them: submit, stop, list, show, logs, and what Task Overview shows.

Each use case reads its rows in one unit of work and only then talks to the queue, S3 or
Prefect, with no transaction open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from botocore.exceptions import BotoCoreError, ClientError
from prefect.settings import get_current_settings
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.db.base import utcnow
from orca_flows.db.models import CloudLink, Pipeline, Run, ScriptVersion
from orca_flows.db.repositories import pipelines as pipelines_repo
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.actor import Actor
from orca_flows.domain.environment import check_environment
from orca_flows.domain.s3_layout import LOG_KEY, OUTPUTS_PREFIX, attempt_prefix, run_prefix
from orca_flows.domain.views import RunView
from orca_flows.errors import InvalidInputError, InvalidStateError, OrcaError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.links import link_access
from orca_flows.services.lookup import get_pipeline, get_run
from orca_flows.services.pipelines import resolve_ordering_key
from orca_flows.services.run_reports import report_run
from orca_flows.services.run_stop import stop_run
from orca_flows.services.run_views import run_view
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "LogChunk",
    "RunDetails",
    "RunOutput",
    "Submitted",
    "earlier_submit",
    "message_body",
    "read_log",
    "run_details",
    "send_run_message",
    "stop_run",
    "submit_run",
    "view_run",
]

logger = get_logger(__name__)


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


@dataclass(frozen=True)
class LogChunk:
    """A piece of a run's log, and whether the run had finished before it was read.

    When ``finished`` is true the log is complete up to a last write that may land just
    after the read: read once more from the end to be sure.
    """

    data: bytes
    finished: bool


@dataclass(frozen=True)
class RunOutput:
    """One file a run left in its outputs folder."""

    name: str  # relative to the outputs folder, e.g. ``report.csv`` or ``charts/a.png``
    uri: str


@dataclass(frozen=True)
class RunDetails:
    """Everything Task Overview shows of a run, read in one go."""

    view: RunView
    log: bytes
    outputs: tuple[RunOutput, ...]
    flow_run_url: str | None


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


def _current_version(session: Session, pipeline: Pipeline) -> ScriptVersion:
    version = (
        pipelines_repo.get_script_version(session, pipeline.id, pipeline.current_version)
        if pipeline.current_version is not None
        else None
    )
    if version is None:
        raise InvalidStateError(
            f"pipeline {pipeline.name!r} has no script; upload one with `orca pipeline upload`."
        )
    return version


def submit_run(
    settings: OrcaSettings,
    actor: Actor,
    pipeline_name: str,
    *,
    requested_by: str,
    idempotency_key: str | None = None,
    parameters: Mapping[str, str] | None = None,
) -> Submitted:
    """Queue a run of the actor's pipeline: a committed Run row, then one FIFO message.

    The row is committed before the message is sent (with no transaction open), so a
    crash in between leaves a queued run without a message, which a worker's sweeper
    sends; never a message without a run.

    Args:
        settings: Orca's settings.
        actor: The pipeline's owner.
        pipeline_name: The pipeline to run (its current script version).
        requested_by: ``user:<id>``, ``schedule:<id>``, ``flow-run:<id>``, ``demo`` or
            ``api``.
        idempotency_key: What makes a repeated request (a firing delivered twice, a
            retried flow) return the run the first one made instead of a second run; at
            most 128 characters.
        parameters: Environment variables for this run's script, over the pipeline's.

    Raises:
        NotFoundError: No such pipeline for this actor.
        InvalidStateError: The pipeline has no script version.
        InvalidInputError: Bad parameters or idempotency key.
    """
    checked = check_environment(parameters or {}, field="parameters")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 128:
        raise InvalidInputError("idempotency_key", "an idempotency key is 1 to 128 characters.")
    earlier = earlier_submit(settings, actor, idempotency_key)
    if earlier is not None:
        return earlier
    try:
        with unit_of_work(settings) as session:
            pipeline = get_pipeline(session, actor, pipeline_name)
            version = _current_version(session, pipeline)
            run = runs_repo.create_run(
                session,
                owner_id=actor.user_id,
                pipeline_id=pipeline.id,
                script_version_id=version.id,
                ordering_key=resolve_ordering_key(pipeline),
                requested_by=requested_by,
                idempotency_key=idempotency_key,
                parameters=checked,
            )
            run.s3_prefix = run_prefix(actor.user_id, pipeline.name, run.id)
            link = pipeline.link
    except IntegrityError:
        # Another submit with the same key won the race: its run is the answer.
        earlier = earlier_submit(settings, actor, idempotency_key)
        if earlier is None:
            raise
        return earlier
    sent = False
    try:
        with prefect_api(settings):
            message_id = send_run_message(link_access(link), run)
    except (BotoCoreError, ClientError, OrcaError) as error:
        logger.warning(
            "run %s queued; its message was not sent (%s): the sweeper will", run.id, error
        )
    else:
        with unit_of_work(settings) as session:
            # Refused when a worker parked the run meanwhile (it deleted this message): the
            # run is then woken by the key's next finish or the sweeper, never stranded.
            runs_repo.set_message_id(session, run.id, message_id, utcnow())
        sent = True
    report_run(settings, run.id)  # orca.run.queued, for Prefect automations
    return Submitted(run.id, run.sequence, run.ordering_key, sent)


def earlier_submit(settings: OrcaSettings, actor: Actor, key: str | None) -> Submitted | None:
    """The run an earlier submit with idempotency ``key`` made (the actor's own), if any.

    Raises:
        InvalidInputError: The key is another user's.
    """
    if key is None:
        return None
    with unit_of_work(settings) as session:
        run = runs_repo.get_run_by_idempotency_key(session, key)
        if run is None:
            return None
        if run.owner_id != actor.user_id:
            raise InvalidInputError(
                "idempotency_key", "this idempotency key belongs to another user's run."
            )
        return Submitted(run.id, run.sequence, run.ordering_key, run.sqs_message_id is not None)


@dataclass(frozen=True)
class _Files:
    """Where a run's files are: read inside a unit, used after it.

    Its current attempt's folder: the last attempt, whose log and outputs the run's
    result is (an earlier attempt's stay in their own folders, untouched).
    """

    link: CloudLink  # detached, every column loaded
    prefix: str

    @classmethod
    def of(cls, run: Run) -> _Files:
        return cls(run.pipeline.link, attempt_prefix(run.s3_prefix or "", run.attempt))

    def bucket(self) -> PrefixedBucket:
        """The run's corner of the link's bucket (loads the link's credentials block)."""
        access = link_access(self.link)
        return PrefixedBucket(access.client("s3"), access.bucket, self.prefix)


def _outputs(bucket: PrefixedBucket) -> tuple[RunOutput, ...]:
    return tuple(
        RunOutput(key.removeprefix(OUTPUTS_PREFIX), bucket.uri(key))
        for key in bucket.list(OUTPUTS_PREFIX)
    )


def _with_outputs(settings: OrcaSettings, view: RunView, files: _Files) -> RunView:
    """``view`` with its outputs listed (one S3 listing, no transaction open)."""
    if not view.finished:
        return view
    with prefect_api(settings):
        return replace(view, outputs=tuple(out.uri for out in _outputs(files.bucket())))


def _read(settings: OrcaSettings, actor: Actor, run_id: str) -> tuple[RunView, _Files]:
    with unit_of_work(settings) as session:
        run = get_run(session, actor, run_id)
        flow_runs = tuple(runs_repo.flow_run_ids(session, run.id))
        return replace(run_view(run), flow_run_ids=flow_runs), _Files.of(run)


def view_run(
    settings: OrcaSettings, actor: Actor, run_id: str, *, with_outputs: bool = True
) -> RunView:
    """The actor's run; ``outputs`` lists ``s3://`` URIs once it has finished.

    The row is read in a unit of work; the outputs are listed after it (one S3 listing).
    ``with_outputs=False`` makes no network call at all (polling a run's state).

    Raises:
        NotFoundError: No such run (or another user's).
    """
    view, files = _read(settings, actor, run_id)
    return _with_outputs(settings, view, files) if with_outputs else view


def read_log(settings: OrcaSettings, actor: Actor, run_id: str, *, start: int = 0) -> LogChunk:
    """The run's log from byte ``start`` on (empty when there is none yet).

    The row is read first, in a unit of work, then the log with none open.

    Raises:
        NotFoundError: No such run (or another user's).
    """
    view, files = _read(settings, actor, run_id)
    with prefect_api(settings):
        return LogChunk(files.bucket().read_from(LOG_KEY, start), view.finished)


def _flow_run_url(flow_run_id: str | None) -> str | None:
    # Prefect derives its UI address from the API's (Prefect Cloud included).
    ui_url = get_current_settings().ui_url
    if not ui_url or not flow_run_id:
        return None
    return f"{str(ui_url).rstrip('/')}/runs/flow-run/{flow_run_id}"


def run_details(settings: OrcaSettings, actor: Actor, run_id: str) -> RunDetails:
    """The run, its whole log, its outputs and, for an operator, its flow run's Prefect page.

    One unit of work reads the row; the log and the outputs are read after it. Prefect is
    the operator's (it holds every user's credentials and logs): a tenant gets no link.

    Raises:
        NotFoundError: No such run (or another user's).
    """
    view, files = _read(settings, actor, run_id)
    with prefect_api(settings):
        bucket = files.bucket()
        outputs = _outputs(bucket) if view.finished else ()
        log = bucket.read_from(LOG_KEY)
        url = _flow_run_url(view.flow_run_id) if actor.is_operator else None
    return RunDetails(replace(view, outputs=tuple(o.uri for o in outputs)), log, outputs, url)
