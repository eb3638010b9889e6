"""Shared fixtures: the database on SQLite and MariaDB, a real Prefect server, the sandbox."""

from __future__ import annotations

import itertools
import os
import socket

# Prefect reads its settings when first imported, so the API URL of the session's Prefect
# server is fixed here, before any test module imports Prefect; the server itself starts
# only when a test asks for the `prefect_server` fixture.
with socket.socket() as _probe:
    _probe.bind(("127.0.0.1", 0))
    _PREFECT_API_URL = f"http://127.0.0.1:{_probe.getsockname()[1]}/api"
os.environ["PREFECT_API_URL"] = _PREFECT_API_URL
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from orca_flows.db.engine import dispose_engines, get_engine, session_scope
from orca_flows.db.models import User
from orca_flows.local.sandbox import SandboxState, start_sandbox, stop_sandbox
from orca_flows.local.servers import (
    DatabaseServer,
    create_mariadb_database,
    find_mariadbd,
    start_mariadb,
)
from orca_flows.services.users import add_user
from orca_flows.settings import get_settings
from tests.support.prefect_server import PrefectServer, start_prefect_server

# Autouse: no network call (AWS, Prefect, HTTP) while a database transaction is open
# (issue 9); ORCA_TX_GUARD=report|fail|off.
from tests.support.transaction_guard import (  # noqa: F401 - registers the fixture and hook
    pytest_terminal_summary,
    transaction_guard,
)

PASSWORD = "correct horse battery"

_MARIADBD = find_mariadbd()
_MYSQL_URL = os.environ.get("ORCA_TEST_MYSQL_URL")
# CI (and `make test`) sets ORCA_REQUIRE_MYSQL=1: there the MySQL leg must run, not skip.
_REQUIRE_MYSQL = os.environ.get("ORCA_REQUIRE_MYSQL") == "1"
_MYSQL_MISSING = _MARIADBD is None and _MYSQL_URL is None

DIALECTS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "mysql",
        id="mysql",
        marks=[
            pytest.mark.mysql,
            pytest.mark.skipif(
                _MYSQL_MISSING and not _REQUIRE_MYSQL,
                reason="no mariadbd binary; apt-get install mariadb-server (CI requires it)",
            ),
        ],
    ),
]
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer | None]:
    """One MariaDB server for the whole session (``None`` when an external URL is given)."""
    if _MYSQL_URL:
        yield None
        return
    if _MARIADBD is None:
        pytest.fail(
            "ORCA_REQUIRE_MYSQL=1 but no mariadbd binary was found: "
            "apt-get install mariadb-server, or set ORCA_TEST_MYSQL_URL."
        )
    server = start_mariadb(tmp_path_factory.mktemp("mariadb"), _MARIADBD)
    yield server
    server.stop()


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, once on SQLite and once on MariaDB."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'orca-test.db'}"
    else:
        server: DatabaseServer | None = request.getfixturevalue("mariadb")
        name = f"orca_test_{os.getpid()}_{next(_database_numbers)}"
        if server is None:
            import pymysql
            from sqlalchemy.engine import make_url

            base = make_url(_MYSQL_URL)
            connection = pymysql.connect(
                host=base.host,
                port=base.port or 3306,
                user=base.username,
                password=base.password or "",
            )
            with connection, connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            url = base.set(database=name).render_as_string(hide_password=False)
        else:
            url = create_mariadb_database(server, name)
    yield url
    dispose_engines()


@pytest.fixture
def engine(db_url: str) -> Engine:
    """A migrated engine on the database under test."""
    return get_engine(db_url)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session in a transaction the test may commit or leave to be rolled back."""
    with sessionmaker(engine, expire_on_commit=False)() as session:
        yield session


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """One real Prefect server process for the session, at PREFECT_API_URL."""
    server = start_prefect_server(_PREFECT_API_URL, tmp_path_factory.mktemp("prefect"))
    yield server
    server.stop()


@pytest.fixture
def sandbox(orca_home: Path) -> Iterator[SandboxState]:
    """The local sandbox of this test's ORCA_HOME, stopped afterwards."""
    settings = get_settings()
    status = start_sandbox(settings, with_prefect=False)
    assert status.state is not None
    yield status.state
    stop_sandbox(settings)


@pytest.fixture
def ann(orca_home: Path, monkeypatch: pytest.MonkeyPatch) -> User:
    """A user in this test's ORCA_HOME database, and the acting user (ORCA_USER)."""
    actor = add_user(get_settings(), "ann@example.com", PASSWORD)
    with session_scope(get_settings().effective_database_url) as session:
        user = session.get_one(User, actor.user_id)
    monkeypatch.setenv("ORCA_USER", user.email)
    return user
