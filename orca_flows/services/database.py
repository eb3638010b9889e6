"""Orca's database as a use case: which one is in use, and bringing its schema up to date."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from orca_flows.db.engine import get_engine
from orca_flows.db.migrations.runner import current_revision, head_revision
from orca_flows.errors import DatabaseError
from orca_flows.settings import OrcaSettings

__all__ = ["DatabaseInfo", "describe_database", "upgrade_database"]


@dataclass(frozen=True)
class DatabaseInfo:
    """The database URL (password hidden), its revision and the shipped head."""

    url: str
    revision: str | None
    head: str


def _info(settings: OrcaSettings, *, migrate: bool) -> DatabaseInfo:
    engine = get_engine(settings.effective_database_url, migrate=migrate)
    try:
        revision = current_revision(engine)
    except OperationalError as error:
        raise DatabaseError(
            f"cannot read Orca's database: {error.orig}; check ORCA_DATABASE_URL."
        ) from error
    return DatabaseInfo(
        url=engine.url.render_as_string(hide_password=True),
        revision=revision,
        head=head_revision(),
    )


def upgrade_database(settings: OrcaSettings) -> DatabaseInfo:
    """Apply every pending migration and return where the database now stands."""
    return _info(settings, migrate=True)


def describe_database(settings: OrcaSettings) -> DatabaseInfo:
    """Where the database stands, without changing it."""
    return _info(settings, migrate=False)
