"""Migrations bring an empty database to head on SQLite and MariaDB, matching the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from orca_flows.db.engine import get_engine
from orca_flows.db.migrations.runner import current_revision, head_revision, upgrade_to_head
from orca_flows.db.models import Base


def test_first_use_upgrades_an_empty_database_to_head(db_url: str) -> None:
    engine = get_engine(db_url)

    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"users", "cloud_links", "pipelines", "script_versions", "runs", "schedules"} <= tables


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = get_engine(db_url)

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_upgrade_again_is_a_no_op(db_url: str) -> None:
    engine = get_engine(db_url)

    assert upgrade_to_head(engine) is False


def test_runs_have_the_indexes_their_queries_need(db_url: str) -> None:
    inspector = inspect(get_engine(db_url))

    indexed = {tuple(index["column_names"]) for index in inspector.get_indexes("runs")}
    unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("runs")}
    assert {
        ("owner_id", "requested_at"),
        ("pipeline_id", "requested_at"),
        ("state", "requested_at"),
    } <= indexed
    assert ("ordering_key", "sequence") in unique | indexed
