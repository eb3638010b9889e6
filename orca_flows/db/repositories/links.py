"""Queries and writes on the ``cloud_links`` table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, select, update
from sqlalchemy.orm import Session

from orca_flows.db.models import CloudLink, Pipeline
from orca_flows.domain.states import CheckStatus

__all__ = [
    "create_link",
    "delete_link",
    "delete_pending_link",
    "get_link_by_id",
    "get_link_by_name",
    "links_to_serve",
    "list_links",
    "mark_link_ready",
    "pipelines_on_link",
    "record_check",
    "remove_stale_pending_link",
]


def create_link(
    session: Session,
    *,
    owner_id: int,
    name: str,
    region: str,
    block_document_name: str,
    role_arn: str | None = None,
    account_id: str | None = None,
    bucket: str | None = None,
    queue_url: str | None = None,
    local: bool = False,
    pending_since: datetime | None = None,
) -> CloudLink:
    """Insert a cloud link and flush (``IntegrityError`` when the owner has that name).

    With ``pending_since`` the row only reserves the name until ``mark_link_ready``.
    """
    link = CloudLink(
        owner_id=owner_id,
        name=name,
        provider="aws",
        role_arn=role_arn,
        region=region,
        account_id=account_id,
        bucket=bucket,
        queue_url=queue_url,
        local=local,
        block_document_name=block_document_name,
        pending_since=pending_since,
    )
    session.add(link)
    session.flush()
    return link


def delete_link(session: Session, link: CloudLink) -> None:
    """Delete the link's row (its block documents are the caller's business)."""
    session.delete(link)
    session.flush()


def get_link_by_name(
    session: Session, owner_id: int, name: str, *, include_pending: bool = False
) -> CloudLink | None:
    """The owner's link called ``name``, or ``None``; a pending one only if asked for."""
    query = select(CloudLink).where(CloudLink.owner_id == owner_id, CloudLink.name == name)
    if not include_pending:
        query = query.where(CloudLink.pending_since.is_(None))
    return session.scalar(query)


def list_links(session: Session, owner_id: int) -> Sequence[CloudLink]:
    """The owner's usable links (not pending) by name."""
    return session.scalars(
        select(CloudLink)
        .where(CloudLink.owner_id == owner_id, CloudLink.pending_since.is_(None))
        .order_by(CloudLink.name)
    ).all()


def remove_stale_pending_link(session: Session, link: CloudLink) -> bool:
    """Delete ``link``'s pending row if it is still the one read (compare-and-set).

    False when another attempt took it over or completed it meanwhile.
    """
    result = session.execute(
        delete(CloudLink).where(
            CloudLink.id == link.id,
            CloudLink.block_document_name == link.block_document_name,
            CloudLink.pending_since.is_not(None),
        )
    )
    return _changed(result) == 1


def mark_link_ready(session: Session, link_id: int, block_document_name: str) -> CloudLink | None:
    """Make the pending link usable; ``None`` if it is no longer this attempt's row."""
    result = session.execute(
        update(CloudLink)
        .where(
            CloudLink.id == link_id,
            CloudLink.block_document_name == block_document_name,
            CloudLink.pending_since.is_not(None),
        )
        .values(pending_since=None)
    )
    if _changed(result) != 1:
        return None
    return session.get(CloudLink, link_id, populate_existing=True)


def delete_pending_link(session: Session, link_id: int, block_document_name: str) -> None:
    """Delete this attempt's pending row (nothing if another attempt took it over)."""
    session.execute(
        delete(CloudLink).where(
            CloudLink.id == link_id,
            CloudLink.block_document_name == block_document_name,
            CloudLink.pending_since.is_not(None),
        )
    )


def record_check(
    session: Session,
    link_id: int,
    block_document_name: str,
    *,
    status: CheckStatus | None,
    at: datetime | None,
    detail: str | None,
    only_if_detail: str | None = None,
) -> bool:
    """Store a check's outcome on the link it ran against.

    With ``only_if_detail``, only while the stored detail is still that one (a
    compare-and-set: a check stored meanwhile is never overwritten). False (nothing
    written) when that link was removed or re-created meanwhile, or the detail changed.
    """
    query = update(CloudLink).where(
        CloudLink.id == link_id, CloudLink.block_document_name == block_document_name
    )
    if only_if_detail is not None:
        query = query.where(CloudLink.last_check_detail == only_if_detail)
    result = session.execute(
        query.values(last_check_status=status, last_check_at=at, last_check_detail=detail)
    )
    return _changed(result) == 1


def pipelines_on_link(session: Session, link_id: int) -> list[str]:
    """Names of the pipelines that run through the link, sorted."""
    return sorted(session.scalars(select(Pipeline.name).where(Pipeline.link_id == link_id)))


def get_link_by_id(session: Session, link_id: int) -> CloudLink | None:
    """The link ``link_id`` (pending or not), or ``None`` once it is removed."""
    return session.get(CloudLink, link_id)


def links_to_serve(session: Session, names: Sequence[str] = ()) -> Sequence[CloudLink]:
    """Every usable link with a queue (or those named), oldest first: what a worker serves.

    A link still being created (``pending_since`` set) is left out until it is ready.
    """
    query = (
        select(CloudLink)
        .where(CloudLink.queue_url.is_not(None), CloudLink.pending_since.is_(None))
        .order_by(CloudLink.id)
    )
    if names:
        query = query.where(CloudLink.name.in_(names))
    return session.scalars(query).all()


def _changed(result: Result[Any]) -> int:
    # An UPDATE or DELETE returns a cursor result: its rowcount is the rows it matched.
    return cast(CursorResult[Any], result).rowcount
