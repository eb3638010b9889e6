"""Alembic environment: migrations run on the engine Orca hands over (no alembic.ini)."""

from alembic import context

from orca_flows.db.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    from orca_flows.db.engine import get_engine
    from orca_flows.settings import get_settings

    engine = get_engine(get_settings().effective_database_url, migrate=False)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
