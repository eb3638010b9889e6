"""Counting sign-in and sign-up attempts per scope in ``auth_throttles`` (fixed windows)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, literal, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from orca_flows.db.base import UTCDateTime
from orca_flows.db.models import AuthThrottle

__all__ = ["count_attempt"]


def count_attempt(session: Session, scope: str, now: datetime, window: timedelta) -> int:
    """Count one attempt in ``scope``'s window; returns the attempts in it, this one included.

    A window that started ``window`` or longer before ``now`` restarts at ``now`` with this
    attempt as its first. One INSERT … upsert does it, so concurrent attempts are all
    counted (the row lock, SQLite's write lock) and no read-then-write race loses one.

    Args:
        session: The unit of work (the count is committed with it).
        scope: What is counted, e.g. ``addr:203.0.113.9`` (at most 255 characters).
        now: The attempt's time (aware UTC).
        window: How long a window lasts.
    """
    lapsed = AuthThrottle.window_started_at <= now - window
    started = literal(now, UTCDateTime())
    attempts: ColumnElement[Any] = case((lapsed, 1), else_=AuthThrottle.attempts + 1)
    window_start: ColumnElement[Any] = case((lapsed, started), else_=AuthThrottle.window_started_at)
    values = {"scope": scope, "attempts": 1, "window_started_at": now}
    name = session.get_bind().dialect.name
    if name == "sqlite":
        statement: Any = (
            sqlite.insert(AuthThrottle)
            .values(values)
            .on_conflict_do_update(
                index_elements=[AuthThrottle.scope],
                set_={"attempts": attempts, "window_started_at": window_start},
            )
        )
    elif name in {"mysql", "mariadb"}:
        # MySQL applies the assignments left to right, each seeing the ones before:
        # ``attempts`` must come first, while ``window_started_at`` still holds the old value.
        statement = (
            mysql.insert(AuthThrottle)
            .values(values)
            .on_duplicate_key_update([("attempts", attempts), ("window_started_at", window_start)])
        )
    else:  # pragma: no cover - Orca supports SQLite and MySQL/MariaDB only
        raise NotImplementedError(f"no upsert for the {name} dialect")
    session.execute(statement)
    return session.scalars(select(AuthThrottle.attempts).where(AuthThrottle.scope == scope)).one()
