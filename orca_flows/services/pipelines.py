"""Pipelines: a script uploaded as immutable versions, and how and where it runs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orca_flows.aws.link_defaults import DEFAULT_TAG_KEY, DEFAULT_TAG_VALUE
from orca_flows.db.models import CloudLink, Pipeline, ScriptVersion
from orca_flows.db.repositories import pipelines as pipelines_repo
from orca_flows.domain import ordering, rules, s3_layout
from orca_flows.domain.actor import Actor
from orca_flows.domain.s3_layout import s3_uri, script_key
from orca_flows.domain.views import PipelineView, ScriptVersionView
from orca_flows.errors import AlreadyExistsError, InvalidInputError, InvalidStateError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.services.links import link_access
from orca_flows.services.lookup import get_link, get_pipeline
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "PIPELINE_NAME_PATTERN",
    "SANDBOX_TARGET",
    "ScriptFile",
    "add_pipeline",
    "check_runner_on_link",
    "list_pipelines",
    "read_script_file",
    "resolve_ordering_key",
    "runners_for_link",
    "script_relative_key",
    "show_pipeline",
    "upload_version",
]

logger = get_logger(__name__)

PIPELINE_NAME_PATTERN = rules.RESOURCE_NAME_PATTERN
# Where an ssm pipeline on a sandbox link runs unless told: the fleet `orca local up` runs.
SANDBOX_TARGET = f"tag:{DEFAULT_TAG_KEY}={DEFAULT_TAG_VALUE}"


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
        raise InvalidInputError(
            "script", f"{script.filename!r} is empty; upload the script itself."
        )
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
    rules.check_resource_name("pipeline", name)
    rules.check_runner(runner)
    if target is not None:
        rules.parse_targets(target)
    if runner == "ssm" and target is None:
        raise InvalidInputError(
            "target", "the ssm runner needs --target (instance ids or tag:KEY=VALUE)."
        )
    rules.check_ordering_key(ordering_key)
    if ordering_key == "instance" and target is None:
        raise InvalidInputError("ordering_key", "the instance ordering key needs --target.")
    rules.check_timeout(timeout)
    rules.check_retries(retries)


def check_runner_on_link(settings: OrcaSettings, link: CloudLink, runner: str) -> str:
    """``runner``, if pipelines on ``link`` may use it (the local runner: see
    ``rules.check_local_runner_allowed``).

    Raises:
        InvalidInputError: On field ``runner`` for ``local`` on a link that may not use it.
    """
    return rules.check_local_runner_allowed(
        runner,
        link_name=link.name,
        sandbox_link=bool(link.local),
        allow_local_runner=settings.allow_local_runner,
    )


def runners_for_link(settings: OrcaSettings, *, sandbox_link: bool) -> tuple[str, ...]:
    """The runners a pipeline may use on a link (what the upload page offers).

    Args:
        settings: Orca's settings (``ORCA_ALLOW_LOCAL_RUNNER``).
        sandbox_link: Whether the link is a sandbox link (``LinkView.local``).
    """
    return tuple(
        runner
        for runner in rules.RUNNERS
        if runner != "local" or sandbox_link or settings.allow_local_runner
    )


def resolve_ordering_key(pipeline: Pipeline) -> str:
    """The FIFO group (and fence) of the pipeline's runs.

    Every key is scoped by the pipeline's owner: one user never holds up another's runs.
    """
    return ordering.resolve_ordering_key(
        pipeline.ordering_key,
        pipeline_id=pipeline.id,
        owner_id=pipeline.owner_id,
        account_id=pipeline.link.account_id,
        target=pipeline.target,
    )


def script_relative_key(pipeline_name: str, version: int, filename: str) -> str:
    """Where a script version lives under the user's prefix."""
    return s3_layout.script_relative_key(pipeline_name, version, filename)


@dataclass(frozen=True)
class _Reserved:
    """A version number held in the database whose script is not stored yet."""

    pipeline_id: int
    version_id: int
    version: int
    relative_key: str
    owner_id: int
    link: CloudLink  # detached: read after the unit for the link's credentials


def _reserve_version(
    session: Session, actor: Actor, pipeline: Pipeline, link: CloudLink, script: ScriptFile
) -> _Reserved:
    """Insert the next version row without making it current.

    The database hands out the number (the unique index settles a race), so no two uploads
    ever write the same key and a version's bytes never change once recorded.
    """
    for _ in range(3):
        number = pipelines_repo.next_version_number(session, pipeline.id)
        relative = script_relative_key(pipeline.name, number, script.filename)
        try:
            with session.begin_nested():
                row = pipelines_repo.insert_script_version(
                    session,
                    pipeline_id=pipeline.id,
                    version=number,
                    s3_key=script_key(actor.user_id, pipeline.name, number, script.filename),
                    sha256=script.sha256,
                    size_bytes=len(script.content),
                    uploaded_by=actor.user_id,
                )
        except IntegrityError:  # a concurrent upload took the number: take the next
            continue
        return _Reserved(pipeline.id, row.id, number, relative, actor.user_id, link)
    raise InvalidStateError(
        f"pipeline {pipeline.name!r} is being uploaded to concurrently; try again."
    )


def _store_script(settings: OrcaSettings, reserved: _Reserved, script: ScriptFile) -> None:
    """Upload the script under its reserved key; on any failure give the number back."""
    try:
        with prefect_api(settings):
            bucket = link_access(reserved.link).user_bucket(reserved.owner_id)
            bucket.put(reserved.relative_key, script.content, content_type="text/plain")
    except BaseException:  # also Ctrl-C: an interrupted upload leaves no version behind
        try:
            with unit_of_work(settings) as session:
                pipelines_repo.delete_script_version(session, reserved.version_id)
        except Exception as error:  # noqa: BLE001 - the upload's error is the one to report
            logger.warning(
                "version row %s of a failed upload stays: %s", reserved.version_id, error
            )
        raise


def _version_views(
    session: Session, pipelines: Sequence[Pipeline]
) -> dict[int, tuple[ScriptVersionView, ...]]:
    found: dict[int, list[ScriptVersionView]] = {p.id: [] for p in pipelines}
    buckets = {p.id: p.link.bucket for p in pipelines}
    current = {p.id: p.current_version or 0 for p in pipelines}
    rows: Sequence[ScriptVersion] = (
        pipelines_repo.list_script_versions(session, list(found)) if found else ()
    )
    for row in rows:
        if row.version > current[row.pipeline_id]:
            continue  # reserved by an upload still running (or one that crashed): not yet a version
        found[row.pipeline_id].append(
            ScriptVersionView(
                version=row.version,
                sha256=row.sha256,
                size_bytes=row.size_bytes,
                s3_uri=s3_uri(buckets[row.pipeline_id] or "", row.s3_key),
                uploaded_at=row.uploaded_at.isoformat(),
            )
        )
    return {pipeline_id: tuple(views) for pipeline_id, views in found.items()}


def _pipeline_views(session: Session, pipelines: Sequence[Pipeline]) -> list[PipelineView]:
    """The one builder of ``PipelineView``: the CLI and the web app show what it returns."""
    versions = _version_views(session, pipelines)
    return [
        PipelineView(
            name=p.name,
            link=p.link.name,
            runner=p.runner,
            target=p.target,
            ordering_key=p.ordering_key,
            timeout_seconds=p.timeout_seconds,
            retries=p.retries,
            current_version=p.current_version,
            created_at=p.created_at.isoformat(),
            versions=versions[p.id],
        )
        for p in pipelines
    ]


def _view_of(settings: OrcaSettings, actor: Actor, name: str) -> PipelineView:
    with unit_of_work(settings) as session:
        [view] = _pipeline_views(session, [get_pipeline(session, actor, name)])
        return view


def add_pipeline(
    settings: OrcaSettings,
    actor: Actor,
    name: str,
    script: ScriptFile,
    *,
    link_name: str,
    runner: str | None = None,
    target: str | None = None,
    ordering_key: str = "pipeline",
    timeout_seconds: int = 3600,
    retries: int = 0,
) -> PipelineView:
    """Create a pipeline and upload its first script version.

    Intent, call, record: one unit inserts the pipeline and reserves version 1 (not yet
    current); the script is uploaded with no transaction open; a second unit makes
    version 1 current. A failed upload takes both rows back. A crash between the steps
    leaves a pipeline without a current version: `orca run start` refuses it, and
    `orca pipeline upload` (the retry the duplicate-name refusal names) finishes it.

    Args:
        settings: Orca's settings.
        actor: The owner-to-be.
        name: The pipeline's name (unique per user).
        script: The script's file name and bytes.
        link_name: The actor's link it runs through.
        runner: ``ssm`` (the default, on every link) or ``local``; ``local`` only on a
            sandbox link or with ``ORCA_ALLOW_LOCAL_RUNNER=true``.
        target: Instance ids or ``tag:KEY=VALUE`` (ssm; a sandbox link's: its fleet's tag).
        ordering_key: ``pipeline``, ``instance``, ``user`` or a custom key.
        timeout_seconds: Seconds before a run's script is killed.
        retries: Extra attempts after a failure.

    Returns:
        The pipeline; ``versions[0]`` is the script just stored.

    Raises:
        InvalidInputError: A refused script or setting (the message names the fix).
        AlreadyExistsError: The user has a pipeline with this name.
        NotFoundError: No such link.
    """
    duplicate = AlreadyExistsError(
        "pipeline", name, "Upload a new version with `orca pipeline upload`."
    )
    with unit_of_work(settings) as session:
        link = get_link(session, actor, link_name)
        runner = runner or "ssm"  # the production path, on the sandbox too (its fleet)
        if runner == "ssm" and target is None and link.local:
            target = SANDBOX_TARGET
        check_runner_on_link(settings, link, runner)  # before the target: its own reason
        _check_settings(name, runner, target, ordering_key, timeout_seconds, retries)
        _check_script(script, settings)
        if pipelines_repo.get_pipeline_by_name(session, actor.user_id, name) is not None:
            raise duplicate
        try:
            with session.begin_nested():
                pipeline = pipelines_repo.create_pipeline(
                    session,
                    owner_id=actor.user_id,
                    name=name,
                    link_id=link.id,
                    runner=runner,
                    target=target,
                    ordering_key=ordering_key,
                    timeout_seconds=timeout_seconds,
                    retries=retries,
                    environment={},
                )
        except IntegrityError as error:  # a concurrent add of the same name won
            raise duplicate from error
        reserved = _reserve_version(session, actor, pipeline, link, script)
    try:
        _store_script(settings, reserved, script)
    except BaseException:
        with unit_of_work(settings) as session:
            created = pipelines_repo.get_pipeline(session, reserved.pipeline_id)
            if created is not None and created.current_version is None:
                pipelines_repo.delete_pipeline(session, reserved.pipeline_id)
        raise
    with unit_of_work(settings) as session:
        pipelines_repo.make_version_current(session, reserved.pipeline_id, reserved.version)
    return _view_of(settings, actor, name)


def upload_version(
    settings: OrcaSettings, actor: Actor, name: str, script: ScriptFile
) -> ScriptVersionView:
    """Upload a new, immutable version of the pipeline's script and make it current.

    Intent, call, record: one unit reserves the next version number (the row exists but
    is not current, so no run uses it); the script is uploaded with no transaction open;
    a second unit makes it current unless a later upload already is. A failed upload
    deletes the reserved row. A crash between the steps leaves the previous version
    current and a numbered row that no run ever uses; uploading again stores the next one.

    Raises:
        InvalidInputError: A refused script.
        NotFoundError: No such pipeline.
    """
    with unit_of_work(settings) as session:
        pipeline = get_pipeline(session, actor, name)
        _check_script(script, settings)
        reserved = _reserve_version(session, actor, pipeline, pipeline.link, script)
    _store_script(settings, reserved, script)
    with unit_of_work(settings) as session:
        pipelines_repo.make_version_current(session, reserved.pipeline_id, reserved.version)
    view = _view_of(settings, actor, name)
    return next(v for v in view.versions if v.version == reserved.version)


def show_pipeline(settings: OrcaSettings, actor: Actor, name: str) -> PipelineView:
    """The actor's pipeline ``name`` with its versions, newest first.

    Raises:
        NotFoundError: No such pipeline.
    """
    return _view_of(settings, actor, name)


def list_pipelines(settings: OrcaSettings, actor: Actor) -> list[PipelineView]:
    """The actor's pipelines by name, each with its versions."""
    with unit_of_work(settings) as session:
        return _pipeline_views(session, pipelines_repo.list_pipelines(session, actor.user_id))
