"""Pipelines: a script uploaded as immutable versions, and how and where it runs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from orca_flows.db.models import Pipeline, Run, ScriptVersion, User
from orca_flows.domain.states import RunState
from orca_flows.db.repositories import pipelines as pipelines_repo
from orca_flows.errors import AlreadyExistsError, InUseError, InvalidInputError, NotFoundError
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.links import get_link, link_access
from orca_flows.settings import OrcaSettings

__all__ = [
    "PIPELINE_NAME_PATTERN",
    "active_runs",
    "ScriptFile",
    "add_pipeline",
    "get_pipeline",
    "list_pipelines",
    "read_script_file",
    "remove_pipeline",
    "resolve_ordering_key",
    "script_relative_key",
    "upload_version",
    "versions",
]

PIPELINE_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
_INSTANCE_ID = r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})"
_TARGET = re.compile(rf"{_INSTANCE_ID}(?:,{_INSTANCE_ID})*|tag:[^=\s]{{1,128}}=[^\s]{{0,256}}")
_CUSTOM_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
RUNNERS = ("ssm", "local")
MAX_RETRIES = 10


@dataclass(frozen=True)
class ScriptFile:
    """A script as uploaded: its file name and bytes."""

    filename: str
    content: bytes

    @property
    def sha256(self) -> str:
        """Hex sha256 of the content."""
        return hashlib.sha256(self.content).hexdigest()


def read_script_file(path: Path) -> ScriptFile:
    """Read a script from disk (the CLI's way of uploading).

    Raises:
        InvalidInputError: The file cannot be read.
    """
    try:
        return ScriptFile(path.name, path.read_bytes())
    except OSError as error:
        raise InvalidInputError("script", f"cannot read {path}: {error.strerror}.") from error


def _check_script(script: ScriptFile, settings: OrcaSettings) -> None:
    if Path(script.filename).suffix not in {".sh", ".py"}:
        raise InvalidInputError(
            "script", f"{script.filename!r} must be a .sh (bash) or .py (python3) file."
        )
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", script.filename):
        raise InvalidInputError(
            "script", f"rename {script.filename!r} to letters, digits, '.', '_' or '-' only."
        )
    if not script.content:
        raise InvalidInputError("script", f"{script.filename!r} is empty; upload the script itself.")
    if b"\0" in script.content:
        raise InvalidInputError(
            "script", f"{script.filename!r} contains NUL bytes: it is binary, not a script."
        )
    if len(script.content) > settings.max_script_bytes:
        raise InvalidInputError(
            "script",
            f"{script.filename!r} has {len(script.content):,} bytes; the limit is "
            f"{settings.max_script_bytes:,} (ORCA_MAX_SCRIPT_BYTES). Keep data in S3, not in "
            "the script.",
        )


def _check_settings(
    name: str, runner: str, target: str | None, ordering_key: str, timeout: int, retries: int
) -> None:
    if not re.fullmatch(PIPELINE_NAME_PATTERN, name):
        raise InvalidInputError(
            "name",
            f"pipeline name {name!r} must be 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit.",
        )
    if runner not in RUNNERS:
        raise InvalidInputError("runner", f"runner {runner!r} must be one of: ssm, local.")
    if target is not None and not _TARGET.fullmatch(target):
        raise InvalidInputError(
            "target",
            f"target {target!r} must be instance ids (i-0123456789abcdef0[,i-…]) or one "
            "tag selector (tag:KEY=VALUE).",
        )
    if runner == "ssm" and target is None:
        raise InvalidInputError(
            "target", "the ssm runner needs --target (instance ids or tag:KEY=VALUE)."
        )
    if ordering_key not in {"pipeline", "instance", "user"} and not _CUSTOM_KEY.fullmatch(
        ordering_key
    ):
        raise InvalidInputError(
            "ordering_key",
            f"ordering key {ordering_key!r} must be pipeline, instance, user or 1-64 "
            "letters, digits and _.:-",
        )
    if ordering_key == "instance" and target is None:
        raise InvalidInputError("ordering_key", "the instance ordering key needs --target.")
    if timeout <= 0:
        raise InvalidInputError("timeout", f"timeout must be a positive number of seconds, not {timeout}.")
    if not 0 <= retries <= MAX_RETRIES:
        raise InvalidInputError("retries", f"retries must be between 0 and {MAX_RETRIES}, not {retries}.")


def resolve_ordering_key(pipeline: Pipeline) -> str:
    """The FIFO group (and fence) of the pipeline's runs.

    Every key is scoped so that one user can never hold up another's runs, except the
    ``instance`` key, which is scoped to the account's instance itself.
    """
    match pipeline.ordering_key:
        case "pipeline":
            return f"p-{pipeline.id}"
        case "user":
            return f"u-{pipeline.owner_id}"
        case "instance":
            return f"i-{pipeline.link.account_id}-{pipeline.target}"[:128]
        case custom:
            return f"u-{pipeline.owner_id}-k-{custom}"


def script_relative_key(pipeline_name: str, version: int, filename: str) -> str:
    """Where a script version lives under the user's prefix."""
    return f"{pipeline_name}/scripts/v{version}/{filename}"


def _store_version(
    session: Session, access: LinkAccess, owner: User, pipeline: Pipeline, script: ScriptFile
) -> ScriptVersion:
    """Record the next version, then upload it; a failed upload leaves no row behind."""
    bucket = access.user_bucket(owner.id)
    latest = session.scalar(
        select(func.max(ScriptVersion.version)).where(ScriptVersion.pipeline_id == pipeline.id)
    )
    relative = script_relative_key(pipeline.name, (latest or 0) + 1, script.filename)
    version = pipelines_repo.add_script_version(
        session,
        pipeline,
        s3_key=bucket.key(relative),
        sha256=script.sha256,
        size_bytes=len(script.content),
        uploaded_by=owner.id,
    )
    # The row is flushed first (a concurrent upload of the same number fails here); if the
    # upload fails the caller's transaction rolls the row back.
    bucket.put(relative, script.content, content_type="text/plain")
    return version


def add_pipeline(
    session: Session,
    settings: OrcaSettings,
    owner: User,
    name: str,
    script: ScriptFile,
    *,
    link_name: str,
    runner: str | None = None,
    target: str | None = None,
    ordering_key: str = "pipeline",
    timeout_seconds: int = 3600,
    retries: int = 0,
) -> tuple[Pipeline, ScriptVersion]:
    """Create a pipeline and upload its first script version.

    Args:
        runner: ``ssm`` or ``local``; default ``local`` for a sandbox link, else ``ssm``.

    Raises:
        InvalidInputError: A refused script or setting (the message names the fix).
        AlreadyExistsError: The user has a pipeline with this name.
        NotFoundError: No such link.
    """
    link = get_link(session, owner, link_name)
    runner = runner or ("local" if link.local else "ssm")
    _check_settings(name, runner, target, ordering_key, timeout_seconds, retries)
    _check_script(script, settings)
    if pipelines_repo.get_pipeline_by_name(session, owner.id, name) is not None:
        raise AlreadyExistsError(
            "pipeline", name, "Upload a new version with `orca pipeline upload`."
        )
    pipeline = pipelines_repo.create_pipeline(
        session,
        owner_id=owner.id,
        name=name,
        link_id=link.id,
        runner=runner,
        target=target,
        ordering_key=ordering_key,
        timeout_seconds=timeout_seconds,
        retries=retries,
        environment={},
    )
    version = _store_version(session, link_access(link), owner, pipeline, script)
    return pipeline, version


def get_pipeline(session: Session, owner: User, name: str) -> Pipeline:
    """The owner's pipeline ``name`` (another user's looks like none).

    Raises:
        NotFoundError: No such pipeline.
    """
    pipeline = pipelines_repo.get_pipeline_by_name(session, owner.id, name)
    if pipeline is None:
        raise NotFoundError("pipeline", name, "See `orca pipeline list`.")
    return pipeline


def list_pipelines(session: Session, owner: User) -> Sequence[Pipeline]:
    """The owner's pipelines by name."""
    return pipelines_repo.list_pipelines(session, owner.id)


def upload_version(
    session: Session, settings: OrcaSettings, owner: User, name: str, script: ScriptFile
) -> ScriptVersion:
    """Upload a new, immutable version of the pipeline's script and make it current."""
    pipeline = get_pipeline(session, owner, name)
    _check_script(script, settings)
    return _store_version(session, link_access(pipeline.link), owner, pipeline, script)


def versions(session: Session, pipeline: Pipeline) -> Sequence[ScriptVersion]:
    """The pipeline's script versions, newest first."""
    return session.scalars(
        select(ScriptVersion)
        .where(ScriptVersion.pipeline_id == pipeline.id)
        .order_by(ScriptVersion.version.desc())
    ).all()


def active_runs(session: Session, pipeline: Pipeline) -> Sequence[Run]:
    """The pipeline's queued and running runs."""
    return session.scalars(
        select(Run).where(
            Run.pipeline_id == pipeline.id,
            Run.state.in_([RunState.QUEUED, RunState.RUNNING]),
        )
    ).all()


def _remove_schedule_deployment(pipeline: Pipeline) -> None:
    """Delete the Prefect deployment of the pipeline's schedule (its row goes by cascade)."""
    from orca_flows.db.repositories.schedules import get_schedule_of_pipeline
    from orca_flows.prefect_adapter.deployments import delete_deployment

    schedule = get_schedule_of_pipeline(object_session(pipeline), pipeline.id)
    if schedule is not None and schedule.deployment_id:
        delete_deployment(schedule.deployment_id, pipeline.name)


def remove_pipeline(session: Session, owner: User, name: str, *, force: bool = False) -> str:
    """Remove a pipeline, its versions and run history; returns where its files stay.

    Raises:
        InUseError: Runs are queued or running and ``force`` is not set.
    """
    from orca_flows.services.runs import stop_run

    pipeline = get_pipeline(session, owner, name)
    active = active_runs(session, pipeline)
    if active and not force:
        raise InUseError(
            f"pipeline {name!r} has {len(active)} queued or running run(s); stop them "
            f"(`orca run stop RUN_ID`) or use --force to stop them and remove."
        )
    for run in active:
        stop_run(session, owner, run.id)
    _remove_schedule_deployment(pipeline)
    link = pipeline.link
    kept = f"s3://{link.bucket}/orca/{owner.id}/{pipeline.name}/"
    if session.scalar(select(func.count()).select_from(Run).where(Run.pipeline_id == pipeline.id)):
        session.execute(Run.__table__.delete().where(Run.pipeline_id == pipeline.id))
    session.execute(
        ScriptVersion.__table__.delete().where(ScriptVersion.pipeline_id == pipeline.id)
    )
    session.delete(pipeline)
    session.flush()
    return kept
