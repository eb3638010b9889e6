"""A throwaway MariaDB server for tests: temp datadir, 127.0.0.1, a free port."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

__all__ = ["MariaDB", "find_mariadbd", "start_mariadb"]


def find_mariadbd() -> str | None:
    """Path of the MariaDB (or MySQL) server binary, if installed."""
    for name in ("mariadbd", "mysqld"):
        for folder in ("", "/usr/sbin/", "/usr/libexec/"):
            found = shutil.which(folder + name) if folder else shutil.which(name)
            if found:
                return found
    return None


@dataclass
class MariaDB:
    """A running server; ``url(db)`` gives a SQLAlchemy URL for a database on it."""

    process: subprocess.Popen[bytes]
    port: int
    datadir: Path

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}"

    def create_database(self, database: str) -> str:
        connection = pymysql.connect(host="127.0.0.1", port=self.port, user="root")
        with connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        return self.url(database)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_mariadb(binary: str, root: Path) -> MariaDB:
    """Initialise a datadir under ``root`` and start a server on a free loopback port."""
    datadir = root / "data"
    install_db = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if install_db is None:
        raise RuntimeError("mariadb-install-db is missing; install the mariadb-server package")
    subprocess.run(
        [
            install_db,
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--user=root",
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    log = open(root / "server.log", "wb")
    process = subprocess.Popen(
        [
            binary,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={root / 'mysqld.sock'}",
            f"--pid-file={root / 'mysqld.pid'}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-log-at-trx-commit=2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=1).close()
            break
        except pymysql.err.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"MariaDB did not start; see {root / 'server.log'}") from None
            time.sleep(0.2)
    return MariaDB(process=process, port=port, datadir=datadir)
