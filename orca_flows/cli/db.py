"""`orca db upgrade | current`: Orca's schema migrations."""

from __future__ import annotations

import typer

from orca_flows.cli.common import console, exits_on_error
from orca_flows.services.database import describe_database, upgrade_database
from orca_flows.settings import get_settings

app = typer.Typer(
    help="Orca's database (SQLite locally, MySQL/RDS in production).", no_args_is_help=True
)


@app.command("upgrade")
@exits_on_error
def upgrade() -> None:
    """Apply pending migrations to ORCA_DATABASE_URL (also done on first use)."""
    info = upgrade_database(get_settings())
    console.print(f"{info.url}: at revision {info.revision} (head).")


@app.command("current")
@exits_on_error
def current() -> None:
    """Show the database in use and its schema revision."""
    info = describe_database(get_settings())
    console.print(f"{info.url}: revision {info.revision or 'none (empty)'}; head is {info.head}.")
