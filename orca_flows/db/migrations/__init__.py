"""Alembic migrations of Orca's schema (applied on first use and by `orca db upgrade`)."""
