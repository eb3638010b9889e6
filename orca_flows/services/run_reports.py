"""What Prefect users see of a run: its state-change events and its flow run's artifacts.

Both are best effort: a run's outcome never depends on Prefect taking an event or an
artifact, so failures are logged as warnings and never raised. Each reads the run in
one unit of work and only then talks to S3 or Prefect, with no transaction open. This
module must not import ``services.runs`` (that module calls ``report_run``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.db.models import CloudLink
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.s3_layout import LOG_KEY, OUTPUTS_PREFIX, attempt_prefix
from orca_flows.domain.states import RunState
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import configured_prefect_api_url, prefect_api
from orca_flows.prefect_adapter.artifacts import OutputLink, RunArtifactFacts, publish_artifacts
from orca_flows.prefect_adapter.events import RunFacts, emit_run_event
from orca_flows.services.links import link_access
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["EVENT_STATES", "PRESIGN_SECONDS", "publish_run_artifacts", "report_run"]

logger = get_logger(__name__)

# The states a Prefect event names (``cancelling`` is a passing state: no event).
EVENT_STATES = frozenset(
    {
        RunState.QUEUED,
        RunState.RUNNING,
        RunState.SUCCEEDED,
        RunState.FAILED,
        RunState.TIMED_OUT,
        RunState.CANCELLED,
    }
)
# How long an artifact's download links work: an artifact outlives its links, and a
# link is a bearer credential to the user's bucket.
PRESIGN_SECONDS = 3600


def _event_facts(settings: OrcaSettings, run_id: str) -> RunFacts | None:
    with unit_of_work(settings) as session:
        run = runs_repo.get_run(session, run_id)
        if run is None:
            return None
        state = RunState(run.state)
        # When the run entered its state: a final state's finish, a start, a request.
        occurred = (
            run.finished_at
            if state.finished
            else run.started_at
            if state == RunState.RUNNING
            else run.requested_at
        )
        return RunFacts(
            run_id=run.id,
            state=str(state),
            pipeline=run.pipeline.name,
            owner_id=run.owner_id,
            owner_email=run.pipeline.owner.email,
            ordering_key=run.ordering_key,
            sequence=run.sequence,
            attempt=run.attempt,
            exit_code=run.exit_code,
            error=run.error_summary,
            requested_by=run.requested_by,
            flow_run_id=run.flow_run_id,
            occurred=occurred,
        )


def report_run(settings: OrcaSettings, run_id: str) -> None:
    """Emit the Prefect event ``orca.run.<state>`` for the run's current state.

    Sync, safe from any thread or event loop; call it with no transaction open. Nothing
    is emitted for ``cancelling``, an unknown run, or when no Prefect API is configured.
    Prefect's events worker sends it in the background; a short-lived process (`orca
    run start`) drains that worker when it exits, so the event is not lost. Never
    raises: a failure is logged as a warning.
    """
    try:
        facts = _event_facts(settings, run_id)
        if facts is None or facts.state not in EVENT_STATES:
            return
        with prefect_api(settings):
            # No API URL = Prefect's ephemeral mode: an event there reaches nobody, and
            # starting that server would cost seconds.
            if configured_prefect_api_url():
                emit_run_event(facts)
    except Exception as error:  # best effort: the run's outcome does not depend on it
        logger.warning("run %s: its Prefect event was not sent (%s)", run_id, error)


@dataclass(frozen=True)
class _Finished:
    """A run's result as read inside the unit; its files are listed after it."""

    facts: RunArtifactFacts  # outputs and log links still empty
    link: CloudLink  # detached, every column loaded
    prefix: str


def _finished(settings: OrcaSettings, run_id: str) -> _Finished | None:
    with unit_of_work(settings) as session:
        run = runs_repo.get_run(session, run_id)
        if run is None:
            return None
        duration = (
            (run.finished_at - run.started_at).total_seconds()
            if run.finished_at and run.started_at
            else None
        )
        prefix = attempt_prefix(run.s3_prefix or "", run.attempt)
        facts = RunArtifactFacts(
            run_id=run.id,
            pipeline=run.pipeline.name,
            state=str(run.state),
            exit_code=run.exit_code,
            duration_seconds=duration,
            attempt=run.attempt,
            script_version=run.script_version.version,
            script_sha256=run.script_version.sha256,
            error=run.error_summary,
            outputs=(),
            log_uri="",
            log_url=None,
        )
        return _Finished(facts, run.pipeline.link, prefix)


def _presigned(bucket: PrefixedBucket, key: str) -> str | None:
    try:  # signing is local; a link whose credentials cannot sign gets URIs only
        return bucket.presigned_get_url(key, expires_in=PRESIGN_SECONDS)
    except Exception as error:
        logger.info("no download link for %s (%s)", bucket.uri(key), error)
        return None


def _with_files(settings: OrcaSettings, found: _Finished) -> RunArtifactFacts:
    """The facts with the attempt's outputs and log links (one S3 listing; blocking)."""
    with prefect_api(settings):
        access = link_access(found.link)
        bucket = PrefixedBucket(access.client("s3"), access.bucket, found.prefix)
        outputs = tuple(
            OutputLink(key.removeprefix(OUTPUTS_PREFIX), bucket.uri(key), _presigned(bucket, key))
            for key in bucket.list(OUTPUTS_PREFIX)
        )
        log_url = _presigned(bucket, LOG_KEY)
    return replace(found.facts, outputs=outputs, log_uri=bucket.uri(LOG_KEY), log_url=log_url)


async def publish_run_artifacts(settings: OrcaSettings, run_id: str, flow_run_id: str) -> None:
    """Create the run's artifacts on flow run ``flow_run_id``: outputs table and log link.

    The outputs table lists each output's ``s3://`` URI and a download link valid for an
    hour, with the exit code, duration, attempt, script version and sha256. Call it once
    the run is final. Never raises: a failure is logged as a warning.
    """
    try:
        found = await asyncio.to_thread(_finished, settings, run_id)
        if found is None:
            return
        # Boto3 and the block load are blocking calls: off the event loop.
        facts = await asyncio.to_thread(_with_files, settings, found)
        with prefect_api(settings):
            await publish_artifacts(facts, flow_run_id)
    except Exception as error:  # best effort: the run's outcome does not depend on it
        logger.warning("run %s: its Prefect artifacts were not published (%s)", run_id, error)
