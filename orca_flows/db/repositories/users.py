"""Queries and writes on the ``users`` table."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, or_, select, update
from sqlalchemy.orm import Session

from orca_flows.db.models import User

__all__ = [
    "accept_login",
    "count_failed_login",
    "create_user",
    "get_user",
    "get_user_by_email",
]


def create_user(
    session: Session, *, email: str, password_hash: str, is_operator: bool = False
) -> User:
    """Insert a user (``email`` already normalised) and flush to get its id.

    Raises:
        sqlalchemy.exc.IntegrityError: The email is taken (the unique index decides).
    """
    user = User(email=email, password_hash=password_hash, failed_logins=0, is_operator=is_operator)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, user_id: int) -> User | None:
    """The user with ``user_id``, or ``None``."""
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    """The user with this (normalised) email, or ``None``."""
    return session.scalar(select(User).where(User.email == email))


def _unlocked(now: datetime) -> ColumnElement[bool]:
    """The account is not locked at ``now`` (never locked, or its lock has lapsed)."""
    return or_(User.locked_until.is_(None), User.locked_until <= now)


def accept_login(
    session: Session, user_id: int, now: datetime, *, new_hash: str | None = None
) -> bool:
    """Reset the failed-login counter unless the account is locked (checked in the same UPDATE).

    With ``new_hash`` the password hash is replaced too (a rehash with today's parameters).
    True if the account was not locked and so was updated.
    """
    values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    if new_hash is not None:
        values["password_hash"] = new_hash
    result = session.execute(
        update(User).where(User.id == user_id, _unlocked(now)).values(**values)
    )
    return cast(CursorResult[Any], result).rowcount == 1


def count_failed_login(
    session: Session, user_id: int, now: datetime, *, max_failures: int, lockout: timedelta
) -> None:
    """Count a wrong password; the ``max_failures``-th locks the account for ``lockout``.

    One UPDATE adds to the counter, so concurrent failures are all counted; attempts
    during a lock do not count (nor extend it), and the counter restarts with the lock so
    the user has a full set of attempts afterwards.
    """
    session.execute(
        update(User)
        .where(User.id == user_id, _unlocked(now))
        .values(failed_logins=User.failed_logins + 1)
    )
    session.execute(
        update(User)
        .where(User.id == user_id, User.failed_logins >= max_failures)
        .values(failed_logins=0, locked_until=now + lockout)
    )
