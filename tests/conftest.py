"""Shared fixtures: Orca's database on SQLite and on a real MariaDB server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from orca_flows.db.engine import dispose_engines, get_engine
from tests.support.mariadb import MariaDB, find_mariadbd, start_mariadb

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
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB | None]:
    """One MariaDB server for the whole session (``None`` when an external URL is given)."""
    if _MYSQL_URL:
        yield None
        return
    if _MARIADBD is None:
        pytest.fail(
            "ORCA_REQUIRE_MYSQL=1 but no mariadbd binary was found: "
            "apt-get install mariadb-server, or set ORCA_TEST_MYSQL_URL."
        )
    server = start_mariadb(_MARIADBD, tmp_path_factory.mktemp("mariadb"))
    yield server
    server.stop()


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, once on SQLite and once on MariaDB."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'orca-test.db'}"
    else:
        server: MariaDB | None = request.getfixturevalue("mariadb")
        name = f"orca_test_{os.getpid()}_{next(_database_numbers)}"
        if server is None:
            import pymysql
            from sqlalchemy.engine import make_url

            base = make_url(_MYSQL_URL)
            connection = pymysql.connect(
                host=base.host, port=base.port or 3306, user=base.username,
                password=base.password or "",
            )
            with connection, connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            url = base.set(database=name).render_as_string(hide_password=False)
        else:
            url = server.create_database(name)
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
