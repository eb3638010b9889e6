"""Orca's tables: models, engine and sessions, migrations, repositories."""
