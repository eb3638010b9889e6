"""Engines and sessions for SQLite (local default) and MySQL/RDS, migrated on first use."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from orca_flows.db.migrations.runner import upgrade_to_head
from orca_flows.errors import DatabaseError

__all__ = ["dispose_engines", "get_engine", "session_scope"]

# SQLite waits this long for another process's write lock (several workers, one file).
SQLITE_BUSY_TIMEOUT_MS = 30_000

_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook open transactions (pysqlite's own BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is
    # locked" when another process writes; taking the write lock up front makes it wait
    # (busy timeout) instead. Several workers share one SQLite file in local mode.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DatabaseError(
            f"ORCA_DATABASE_URL {url!r} is not a database URL; use e.g. "
            "sqlite:////path/orca.db or mysql+pymysql://user:pass@host/orca."
        ) from error
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        # RDS closes idle connections; check before use and recycle well under its timeout.
        options.update(pool_pre_ping=True, pool_recycle=1800)
        if parsed.get_backend_name() == "mysql":
            options["connect_args"] = {"charset": "utf8mb4"}
    try:
        engine = create_engine(parsed, **options)
    except NoSuchModuleError as error:
        raise DatabaseError(
            f"no driver for {parsed.drivername!r}; Orca supports sqlite and mysql+pymysql."
        ) from error
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def get_engine(url: str, *, migrate: bool = True) -> Engine:
    """The process-wide engine for ``url``, with the schema upgraded on first use.

    Args:
        url: A SQLAlchemy URL (``sqlite:///…`` or ``mysql+pymysql://…``).
        migrate: Apply pending Alembic migrations the first time this URL is used.

    Raises:
        DatabaseError: The URL is malformed, the server is unreachable or migration failed.
    """
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create_engine(url)
        if migrate and url not in _migrated:
            try:
                upgrade_to_head(engine)
            except OperationalError as error:
                raise DatabaseError(
                    f"cannot reach Orca's database at "
                    f"{engine.url.render_as_string(hide_password=True)}: {error.orig}; "
                    "check ORCA_DATABASE_URL and that the server is running."
                ) from error
            _migrated.add(url)
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, forked workers)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session whose transaction commits when the block ends and rolls back on error.

    The caller of a service owns this scope; repositories only flush.
    """
    factory = sessionmaker(get_engine(url), expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
