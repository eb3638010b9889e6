"""Queries and writes on ``pipelines`` and their immutable ``script_versions``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from orca_flows.db.models import Pipeline, Run, ScriptVersion

__all__ = [
    "add_script_version",
    "create_pipeline",
    "delete_pipeline",
    "delete_script_version",
    "get_pipeline",
    "get_pipeline_by_name",
    "get_script_version",
    "insert_script_version",
    "list_pipelines",
    "list_script_versions",
    "make_version_current",
    "next_version_number",
]


def create_pipeline(
    session: Session, *, owner_id: int, name: str, link_id: int, **settings: Any
) -> Pipeline:
    """Insert a pipeline (``settings``: runner, target, ordering_key, timeout_seconds...)."""
    pipeline = Pipeline(owner_id=owner_id, name=name, link_id=link_id, **settings)
    session.add(pipeline)
    session.flush()
    return pipeline


def get_pipeline(session: Session, pipeline_id: int) -> Pipeline | None:
    """The pipeline ``pipeline_id`` (whoever owns it), or ``None``."""
    return session.get(Pipeline, pipeline_id)


def get_pipeline_by_name(session: Session, owner_id: int, name: str) -> Pipeline | None:
    """The owner's pipeline called ``name``, or ``None``."""
    return session.scalar(
        select(Pipeline).where(Pipeline.owner_id == owner_id, Pipeline.name == name)
    )


def list_pipelines(session: Session, owner_id: int) -> Sequence[Pipeline]:
    """The owner's pipelines by name."""
    return session.scalars(
        select(Pipeline).where(Pipeline.owner_id == owner_id).order_by(Pipeline.name)
    ).all()


def add_script_version(
    session: Session,
    pipeline: Pipeline,
    *,
    s3_key: str,
    sha256: str,
    size_bytes: int,
    uploaded_by: int,
) -> ScriptVersion:
    """Record the next version of ``pipeline``'s script and make it current.

    The (pipeline, version) unique index turns a concurrent upload into an IntegrityError
    rather than two scripts sharing a number.
    """
    latest = session.scalar(
        select(func.max(ScriptVersion.version)).where(ScriptVersion.pipeline_id == pipeline.id)
    )
    version = ScriptVersion(
        pipeline_id=pipeline.id,
        version=(latest or 0) + 1,
        s3_key=s3_key,
        sha256=sha256,
        size_bytes=size_bytes,
        uploaded_by=uploaded_by,
    )
    session.add(version)
    session.flush()
    pipeline.current_version = version.version
    session.flush()
    return version


def next_version_number(session: Session, pipeline_id: int) -> int:
    """The number the pipeline's next script version gets (1 for the first)."""
    latest = session.scalar(
        select(func.max(ScriptVersion.version)).where(ScriptVersion.pipeline_id == pipeline_id)
    )
    return (latest or 0) + 1


def insert_script_version(
    session: Session,
    *,
    pipeline_id: int,
    version: int,
    s3_key: str,
    sha256: str,
    size_bytes: int,
    uploaded_by: int,
) -> ScriptVersion:
    """Insert version ``version`` without making it current (the number is reserved).

    Raises:
        IntegrityError: Another upload holds this number (the unique index).
    """
    row = ScriptVersion(
        pipeline_id=pipeline_id,
        version=version,
        s3_key=s3_key,
        sha256=sha256,
        size_bytes=size_bytes,
        uploaded_by=uploaded_by,
    )
    session.add(row)
    session.flush()
    return row


def make_version_current(session: Session, pipeline_id: int, version: int) -> None:
    """Make ``version`` current unless a later one already is (uploads may finish out of order)."""
    session.execute(
        update(Pipeline)
        .where(
            Pipeline.id == pipeline_id,
            or_(Pipeline.current_version.is_(None), Pipeline.current_version < version),
        )
        .values(current_version=version)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()


def delete_script_version(session: Session, version_id: int) -> None:
    """Delete a version that never became current (its upload failed)."""
    session.execute(delete(ScriptVersion).where(ScriptVersion.id == version_id))


def list_script_versions(session: Session, pipeline_ids: Sequence[int]) -> Sequence[ScriptVersion]:
    """The script versions of ``pipeline_ids``, newest first within each pipeline."""
    return session.scalars(
        select(ScriptVersion)
        .where(ScriptVersion.pipeline_id.in_(pipeline_ids))
        .order_by(ScriptVersion.pipeline_id, ScriptVersion.version.desc())
    ).all()


def delete_pipeline(session: Session, pipeline_id: int) -> None:
    """Delete a pipeline with its run history and versions (its schedule goes by cascade)."""
    session.execute(delete(Run).where(Run.pipeline_id == pipeline_id))
    session.execute(delete(ScriptVersion).where(ScriptVersion.pipeline_id == pipeline_id))
    session.execute(delete(Pipeline).where(Pipeline.id == pipeline_id))
    session.expire_all()


def get_script_version(session: Session, pipeline_id: int, version: int) -> ScriptVersion | None:
    """Version ``version`` of the pipeline's script, or ``None``."""
    return session.scalar(
        select(ScriptVersion).where(
            ScriptVersion.pipeline_id == pipeline_id, ScriptVersion.version == version
        )
    )
