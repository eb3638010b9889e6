"""Queries and writes on the ``users`` table."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from orca_flows.db.models import User

__all__ = ["create_user", "get_user", "get_user_by_email"]


def create_user(session: Session, *, email: str, password_hash: str) -> User:
    """Insert a user (``email`` already normalised) and flush to get its id.

    Raises:
        sqlalchemy.exc.IntegrityError: The email is taken (the unique index decides).
    """
    user = User(email=email, password_hash=password_hash, failed_logins=0)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, user_id: int) -> User | None:
    """The user with ``user_id``, or ``None``."""
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    """The user with this (normalised) email, or ``None``."""
    return session.scalar(select(User).where(User.email == email))
