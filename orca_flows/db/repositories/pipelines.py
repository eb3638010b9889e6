"""Queries and writes on ``pipelines`` and their immutable ``script_versions``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orca_flows.db.models import Pipeline, ScriptVersion

__all__ = [
    "add_script_version",
    "create_pipeline",
    "get_pipeline_by_name",
    "list_pipelines",
]


def create_pipeline(
    session: Session, *, owner_id: int, name: str, link_id: int, **settings: Any
) -> Pipeline:
    """Insert a pipeline (``settings``: runner, target, ordering_key, timeout_seconds...)."""
    pipeline = Pipeline(owner_id=owner_id, name=name, link_id=link_id, **settings)
    session.add(pipeline)
    session.flush()
    return pipeline


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
