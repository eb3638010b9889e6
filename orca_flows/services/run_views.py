"""What a run looks like to its owner (``RunView``), read from Orca's tables alone.

The cheap half of the runs use case: no AWS, no Prefect, so `orca run list`, the web app's
tables and `wait_for_run`'s polls pay only the database (and the CLI only the ORM's
import). Outputs, logs and submits are ``orca_flows.services.runs``.
"""

from __future__ import annotations

from datetime import datetime

from orca_flows.db.models import Run
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.actor import Actor
from orca_flows.domain.s3_layout import attempt_prefix, log_key, s3_uri
from orca_flows.domain.states import RunState
from orca_flows.domain.views import RunView
from orca_flows.errors import InvalidInputError
from orca_flows.services.lookup import get_pipeline
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["list_runs", "log_uri", "run_view"]


def log_uri(run: Run, bucket: str) -> str:
    """The log of the run's current attempt in S3 (live while it runs): the last one, whose
    result the run took once it is over."""
    return s3_uri(bucket, log_key(attempt_prefix(run.s3_prefix or "", run.attempt)))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def run_view(run: Run, outputs: tuple[str, ...] = ()) -> RunView:
    """The one builder of ``RunView`` (inside a unit of work; no I/O)."""
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
        log_uri=log_uri(run, run.pipeline.link.bucket or ""),
        outputs=outputs,
        error=run.error_summary,
    )


def list_runs(
    settings: OrcaSettings,
    actor: Actor,
    *,
    pipeline: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RunView]:
    """The actor's runs as views, newest first, without their outputs (rows only).

    Raises:
        InvalidInputError: An unknown state.
        NotFoundError: The actor has no pipeline ``pipeline``.
    """
    if state is not None and state not in set(RunState):
        raise InvalidInputError("state", f"state {state!r} must be one of: {', '.join(RunState)}.")
    with unit_of_work(settings) as session:
        pipeline_id = get_pipeline(session, actor, pipeline).id if pipeline else None
        found = runs_repo.list_runs(
            session,
            actor.user_id,
            pipeline_id=pipeline_id,
            state=state,
            since=since,
            limit=limit,
            offset=offset,
        )
        return [run_view(run) for run in found]
