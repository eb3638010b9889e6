"""Throwaway database servers on 127.0.0.1: PostgreSQL (for Prefect) and MariaDB (for Orca).

Each gets a free port and a data directory of its own, runs in a session of its own and is
stopped by its pid. Used by the production profile on one machine
(``orca_flows.local.profile``) and by the tests that need a real server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

from orca_flows.errors import SandboxError

__all__ = [
    "DatabaseServer",
    "create_mariadb_database",
    "find_mariadbd",
    "find_postgres",
    "free_loopback_port",
    "start_mariadb",
    "start_postgres",
]

_START_TIMEOUT_S = 60.0


def free_loopback_port() -> int:
    """A port nothing listens on at 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class DatabaseServer:
    """A running server: its process, port, data directory and a URL maker."""

    process: subprocess.Popen[bytes]
    port: int
    datadir: Path
    url_template: str  # with {database}
    owned_dir: Path | None = None  # removed once stopped (a directory this module made)

    def url(self, database: str) -> str:
        """A SQLAlchemy URL of ``database`` on this server."""
        return self.url_template.format(database=database)

    def stop(self) -> None:
        """SIGTERM the server (a clean shutdown), SIGKILL after 30 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.owned_dir is not None:
            shutil.rmtree(self.owned_dir, ignore_errors=True)


def _serve(command: list[str], port: int, what: str, log: Path) -> subprocess.Popen[bytes]:
    """Start a server in a session of its own, logging to ``log``; wait until ``port`` answers."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _wait_until_accepting(process, port, what, log)
    return process


def _wait_until_accepting(
    process: subprocess.Popen[bytes], port: int, what: str, log: Path
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SandboxError(f"{what} did not start; see {log}.") from None
            time.sleep(0.2)


def find_mariadbd() -> str | None:
    """Path of the MariaDB (or MySQL) server binary, if installed."""
    for name in ("mariadbd", "mysqld"):
        for found in (shutil.which(name), shutil.which(f"/usr/sbin/{name}")):
            if found:
                return found
    return None


def start_mariadb(root: Path, binary: str | None = None) -> DatabaseServer:
    """Initialise a datadir under ``root`` and start MariaDB on a free loopback port.

    Raises:
        SandboxError: MariaDB is not installed or did not start.
    """
    binary = binary or find_mariadbd()
    install_db = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if binary is None or install_db is None:
        raise SandboxError("MariaDB is missing: install the mariadb-server package.")
    datadir = root / "data"
    subprocess.run(
        [
            install_db,
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--user=root" if os.geteuid() == 0 else f"--user={pwd.getpwuid(os.geteuid()).pw_name}",
        ],
        check=True,
        capture_output=True,
    )
    port = free_loopback_port()
    command = [
        binary,
        "--no-defaults",
        f"--datadir={datadir}",
        f"--socket={root / 'mysqld.sock'}",
        f"--pid-file={root / 'mysqld.pid'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        *(["--user=root"] if os.geteuid() == 0 else []),
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=64M",
        "--innodb-flush-log-at-trx-commit=2",
    ]
    process = _serve(command, port, "MariaDB", root / "server.log")
    return DatabaseServer(
        process, port, datadir, f"mysql+pymysql://root@127.0.0.1:{port}/{{database}}"
    )


def create_mariadb_database(server: DatabaseServer, database: str) -> str:
    """Create ``database`` (utf8mb4) on a MariaDB ``server``; returns its URL."""
    connection = pymysql.connect(host="127.0.0.1", port=server.port, user="root")
    with connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    return server.url(database)


def find_postgres() -> Path | None:
    """The directory holding PostgreSQL's ``initdb`` and ``postgres``, if installed."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    return None


def _as_server_user() -> tuple[list[str], str | None]:
    """PostgreSQL refuses to run as root: as root, run it as the OS user ``postgres``."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise SandboxError(
            "PostgreSQL cannot run as root and there is no `postgres` OS user: install the "
            "postgresql package (it creates the user), or run as another user."
        ) from None
    return ["runuser", "-u", "postgres", "--"], "postgres"


def start_postgres(database: str = "prefect") -> DatabaseServer:
    """Start PostgreSQL on a free loopback port with a fresh cluster and ``database``.

    Its data lives in a new directory under the system's temporary folder (the server's
    OS user must reach it, which a test's own temporary folder may not let it); the
    server trusts local connections only (127.0.0.1 and its socket, in that directory).

    Raises:
        SandboxError: PostgreSQL is not installed or did not start.
    """
    folder = find_postgres()
    if folder is None:
        raise SandboxError("PostgreSQL is missing: install the postgresql package.")
    prefix, owner = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="orca-postgres-"))
    if owner is not None:
        shutil.chown(root, user=owner)
    datadir = root / "data"
    subprocess.run(
        [*prefix, str(folder / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    port = free_loopback_port()
    log = root / "server.log"
    command = [*prefix, str(folder / "postgres"), "-D", str(datadir), "-p", str(port)]
    command += ["-k", str(root), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]
    command += ["-c", "fsync=off"]  # a throwaway cluster: durability buys nothing here
    process = _serve(command, port, "PostgreSQL", log)
    _create_postgres_database(folder, port, database, root, log)
    return DatabaseServer(
        process,
        port,
        datadir,
        f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{{database}}",
        owned_dir=root,
    )


def _create_postgres_database(
    folder: Path, port: int, database: str, root: Path, log: Path
) -> None:
    # The port answers a moment before the server takes connections: retry briefly.
    createdb = folder / "createdb"
    command = [str(createdb), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database]
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise SandboxError(f"could not create database {database!r}: {done.stderr} (see {log})")
        time.sleep(0.3)
