"""`orca user add` end to end through the CLI, on the default SQLite under ORCA_HOME."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from orca_flows.cli.main import app

PASSWORD = "correct horse battery"


def _emails(home: Path) -> list[str]:
    if not (home / "orca.db").exists():  # refused before Orca even opened its database
        return []
    engine = create_engine(f"sqlite:///{home / 'orca.db'}")
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT email FROM users ORDER BY id")))


def test_user_add_with_password_from_stdin(orca_home: Path) -> None:
    result = CliRunner().invoke(
        app, ["user", "add", "Ann@Example.com", "--password-stdin"], input=PASSWORD + "\n"
    )

    assert result.exit_code == 0, result.output
    assert "Added user ann@example.com" in result.stdout
    assert _emails(orca_home) == ["ann@example.com"]


def _operators(home: Path) -> list[tuple[str, bool]]:
    engine = create_engine(f"sqlite:///{home / 'orca.db'}")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT email, is_operator FROM users ORDER BY id"))
        return [(email, bool(flag)) for email, flag in rows]


def test_operator_flag_marks_the_user_as_an_operator(orca_home: Path) -> None:
    runner = CliRunner()
    tenant = runner.invoke(
        app, ["user", "add", "ann@example.com", "--password-stdin"], input=PASSWORD
    )
    operator = runner.invoke(
        app, ["user", "add", "ops@example.com", "--operator", "--password-stdin"], input=PASSWORD
    )

    assert tenant.exit_code == 0 and operator.exit_code == 0, operator.output
    assert "an operator" in operator.stdout and "operator" not in tenant.stdout
    assert _operators(orca_home) == [("ann@example.com", False), ("ops@example.com", True)]


def test_user_add_prompts_twice_for_the_password(orca_home: Path) -> None:
    result = CliRunner().invoke(
        app, ["user", "add", "ann@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )

    assert result.exit_code == 0, result.output
    assert _emails(orca_home) == ["ann@example.com"]


def test_duplicate_user_exits_non_zero_with_a_clear_message(orca_home: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["user", "add", "ann@example.com", "--password-stdin"], input=PASSWORD)

    result = runner.invoke(
        app, ["user", "add", "ANN@example.com", "--password-stdin"], input=PASSWORD
    )

    assert result.exit_code == 1
    assert "ann@example.com" in result.stderr and "already exists" in result.stderr
    assert _emails(orca_home) == ["ann@example.com"]


def test_bad_email_exits_non_zero_and_stores_nothing(orca_home: Path) -> None:
    result = CliRunner().invoke(
        app, ["user", "add", "not-an-email", "--password-stdin"], input=PASSWORD
    )

    assert result.exit_code == 1
    assert "not a valid email address" in result.stderr
    assert _emails(orca_home) == []


def test_short_password_says_how_long_it_must_be(orca_home: Path) -> None:
    result = CliRunner().invoke(
        app, ["user", "add", "ann@example.com", "--password-stdin"], input="short"
    )

    assert result.exit_code == 1
    assert "at least 12" in result.stderr
    assert _emails(orca_home) == []


def test_unreachable_database_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("ORCA_DATABASE_URL", "mysql+pymysql://orca@127.0.0.1:1/orca")

    result = CliRunner().invoke(
        app, ["user", "add", "ann@example.com", "--password-stdin"], input=PASSWORD
    )

    assert result.exit_code == 1
    assert "cannot reach Orca's database" in result.stderr and "ORCA_DATABASE_URL" in result.stderr


def test_help_lists_the_command_groups() -> None:
    result = CliRunner().invoke(app, ["--help"])

    assert result.exit_code == 0
    for group in ("demo", "local", "user", "db"):
        assert group in result.stdout
