"""Queries and writes on the ``external_ids`` table: ExternalIds Orca issued, and who uses them.

An ExternalId is bound to the user it was issued to and used by at most one link (a unique
``link_id``). Removing a link frees its ExternalId through the foreign key's ``ON DELETE SET
NULL`` (SQLite runs with ``PRAGMA foreign_keys=ON``, see ``db.engine``), so a failed or
removed link never keeps one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, select, update
from sqlalchemy.orm import Session

from orca_flows.db.models import CloudLink, ExternalId

__all__ = [
    "claim",
    "find_for_owner",
    "issue",
    "newest_unused",
    "release",
    "value_for_link",
    "values_of_local_links",
    "withdraw",
]


def issue(session: Session, owner_id: int, value: str) -> ExternalId:
    """Record ``value`` as issued to the owner, unused, and flush."""
    row = ExternalId(value=value, owner_id=owner_id)
    session.add(row)
    session.flush()
    return row


def find_for_owner(session: Session, owner_id: int, value: str) -> ExternalId | None:
    """The ExternalId ``value`` if it was issued to the owner (another user's looks like none)."""
    return session.scalar(
        select(ExternalId).where(ExternalId.value == value, ExternalId.owner_id == owner_id)
    )


def newest_unused(session: Session, owner_id: int) -> str | None:
    """The owner's most recently issued ExternalId that no link uses, or ``None``."""
    return session.scalar(
        select(ExternalId.value)
        .where(ExternalId.owner_id == owner_id, ExternalId.link_id.is_(None))
        .order_by(ExternalId.issued_at.desc(), ExternalId.value)
        .limit(1)
    )


def claim(session: Session, *, owner_id: int, value: str, link_id: int) -> bool:
    """Mark ``value`` used by ``link_id`` if it was issued to the owner and is unused.

    Compare-and-set on ``link_id IS NULL``: of two links racing for one ExternalId, one wins.
    False when the value was not issued to the owner or another link uses it.
    """
    result = session.execute(
        update(ExternalId)
        .where(
            ExternalId.value == value,
            ExternalId.owner_id == owner_id,
            ExternalId.link_id.is_(None),
        )
        .values(link_id=link_id)
    )
    return _changed(result) == 1


def release(session: Session, link_id: int) -> None:
    """Free the ExternalId ``link_id`` uses (rotation; removal frees it through the key)."""
    session.execute(update(ExternalId).where(ExternalId.link_id == link_id).values(link_id=None))


def withdraw(session: Session, value: str) -> None:
    """Delete an ExternalId no link uses (one issued for a creation that failed)."""
    session.execute(
        delete(ExternalId).where(ExternalId.value == value, ExternalId.link_id.is_(None))
    )


def value_for_link(session: Session, link_id: int) -> str | None:
    """The ExternalId the link uses, or ``None``."""
    return session.scalar(select(ExternalId.value).where(ExternalId.link_id == link_id))


def values_of_local_links(session: Session) -> Sequence[str]:
    """The ExternalIds every sandbox link uses (all users: they share the sandbox's role)."""
    return session.scalars(
        select(ExternalId.value)
        .join(CloudLink, CloudLink.id == ExternalId.link_id)
        .where(CloudLink.local.is_(True))
        .order_by(ExternalId.value)
    ).all()


def _changed(result: Result[Any]) -> int:
    # An UPDATE returns a cursor result: its rowcount is the rows it matched.
    return cast(CursorResult[Any], result).rowcount
