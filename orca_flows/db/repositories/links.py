"""Queries and writes on the ``cloud_links`` table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from orca_flows.db.models import CloudLink

__all__ = ["create_link", "get_link_by_name", "list_links"]


def create_link(
    session: Session,
    *,
    owner_id: int,
    name: str,
    region: str,
    block_document_name: str,
    role_arn: str | None = None,
) -> CloudLink:
    """Insert a cloud link and flush (``IntegrityError`` when the owner has that name)."""
    link = CloudLink(
        owner_id=owner_id,
        name=name,
        provider="aws",
        role_arn=role_arn,
        region=region,
        block_document_name=block_document_name,
    )
    session.add(link)
    session.flush()
    return link


def get_link_by_name(session: Session, owner_id: int, name: str) -> CloudLink | None:
    """The owner's link called ``name``, or ``None``."""
    return session.scalar(
        select(CloudLink).where(CloudLink.owner_id == owner_id, CloudLink.name == name)
    )


def list_links(session: Session, owner_id: int) -> Sequence[CloudLink]:
    """The owner's links by name."""
    return session.scalars(
        select(CloudLink).where(CloudLink.owner_id == owner_id).order_by(CloudLink.name)
    ).all()
