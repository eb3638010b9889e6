"""The production profile on one machine: every part Orca scales out with, as real servers.

`make prod-local` (``python -m orca_flows.local.profile``) starts, each on 127.0.0.1 with a
free port and its data in one temporary directory:

- PostgreSQL, and a Prefect server on it (the production set-up: SQLite answers bursts
  with 503), with an API auth string as the sandbox's has;
- MariaDB for Orca's tables (as MySQL/RDS in production), migrated with `orca db upgrade`;
- the AWS emulator and its EC2 fleet (`orca local up`), a user and a link to it;
- three `orca worker` processes, `orca serve` and `orca ui`.

It prints what to export to talk to it, then runs until Ctrl-C or SIGTERM and stops every
process by its pid, servers last, and removes the directory (``--keep`` leaves it). Only
configuration differs from production: docs/operations.md lists the settings.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orca_flows.errors import OrcaError, SandboxError
from orca_flows.local.processes import kill_group, spawn, wait_until_up
from orca_flows.local.servers import (
    DatabaseServer,
    create_mariadb_database,
    free_loopback_port,
    start_mariadb,
    start_postgres,
)

__all__ = ["OPERATOR_EMAIL", "Profile", "main", "start_profile"]

OPERATOR_EMAIL = "operator@example.com"
LINK_NAME = "dev"
_ORCA = str(Path(sys.executable).with_name("orca"))
_PREFECT = str(Path(sys.executable).with_name("prefect"))


@dataclass
class Profile:
    """A running profile: what its processes share (``env``) and how to stop them."""

    root: Path
    env: dict[str, str]
    password: str
    prefect_api_url: str
    ui_url: str | None = None
    servers: list[DatabaseServer] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        """The folder every process of the profile writes its log in."""
        return self.root / "logs"

    def orca(self, *args: str, stdin: str | None = None) -> str:
        """Run `orca ARGS` against the profile; its output, or SandboxError with it."""
        done = subprocess.run(
            [_ORCA, *args], env=self.env, input=stdin, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SandboxError(f"`orca {' '.join(args)}` failed: {done.stderr or done.stdout}")
        return done.stdout

    def spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        """Start a process of the profile, logging to ``logs/<name>.log``."""
        self.processes[name] = spawn(command, self.logs / f"{name}.log", env or self.env)

    def stop(self) -> None:
        """Stop Orca's processes, the emulator, Prefect, then the databases; by their pids."""
        for name in reversed(list(self.processes)):
            kill_group(self.processes[name].pid, grace_seconds=15)
        if (self.root / "orca" / "sandbox").exists():
            subprocess.run([_ORCA, "local", "down"], env=self.env, capture_output=True)
        for server in reversed(self.servers):
            server.stop()


def _orca_env(root: Path, database_url: str, prefect_api_url: str, auth: str) -> dict[str, str]:
    # Only what production configures too (docs/operations.md), plus the sandbox's home.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ORCA_"))}
    return inherited | {
        "ORCA_HOME": str(root / "orca"),
        "ORCA_DATABASE_URL": database_url,
        "ORCA_USER": OPERATOR_EMAIL,
        "PREFECT_API_URL": prefect_api_url,
        "PREFECT_API_AUTH_STRING": auth,
        "PREFECT_HOME": str(root / "prefect-client"),
    }


def _start_prefect(profile: Profile, postgres: DatabaseServer, auth: str) -> None:
    port = profile.prefect_api_url.rsplit(":", 1)[1].removesuffix("/api")
    env = {k: v for k, v in profile.env.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(profile.root / "prefect-server"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": postgres.url("prefect"),
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # uvicorn's access log: every answer's status, so a 503 cannot pass unseen.
        "PREFECT_SERVER_LOGGING_LEVEL": "INFO",
    }
    command = [_PREFECT, "server", "start", "--host", "127.0.0.1", "--port", port]
    profile.spawn("prefect-server", command, env)
    wait_until_up(
        profile.processes["prefect-server"],
        f"http://127.0.0.1:{port}/api/health",
        "the Prefect server",
        profile.logs / "prefect-server.log",
    )


def start_profile(
    root: Path,
    *,
    workers: int = 3,
    with_ui: bool = True,
    instances: int = 3,
    progress: Callable[[str], None] = print,
) -> Profile:
    """Start the whole profile under ``root``; on any failure, stop what was started.

    Raises:
        SandboxError: A part did not start (the message names its log).
    """
    (root / "logs").mkdir(parents=True, exist_ok=True)
    auth = secrets.token_urlsafe(24)
    port = free_loopback_port()
    profile = Profile(root, {}, secrets.token_urlsafe(12), f"http://127.0.0.1:{port}/api")
    try:
        progress("Starting PostgreSQL (Prefect's database) ...")
        postgres = start_postgres("prefect")
        profile.servers.append(postgres)
        progress("Starting MariaDB (Orca's database) ...")
        (root / "mariadb").mkdir()
        mariadb = start_mariadb(root / "mariadb")
        profile.servers.append(mariadb)
        database_url = create_mariadb_database(mariadb, "orca")
        progress("Starting the Prefect server on PostgreSQL ...")
        profile.env = _orca_env(root, database_url, profile.prefect_api_url, auth)
        _start_prefect(profile, postgres, auth)
        progress("Migrating Orca's tables, starting the AWS emulator and its EC2 fleet ...")
        profile.orca("db", "upgrade")
        profile.orca("local", "up", "--instances", str(instances))
        profile.orca("user", "add", OPERATOR_EMAIL, "--password-stdin", "--operator",
                     stdin=profile.password + "\n")  # fmt: skip
        profile.orca("link", "create", LINK_NAME, "--local")
        progress(f"Starting {workers} workers, `orca serve` and the web app ...")
        for number in range(1, workers + 1):
            profile.spawn(f"worker-{number}", [_ORCA, "worker", "--concurrency", "4"])
        profile.spawn("serve", [_ORCA, "serve"])
        if with_ui:
            ui_port = free_loopback_port()
            profile.spawn("ui", [_ORCA, "ui", "--port", str(ui_port)])
            profile.ui_url = f"http://127.0.0.1:{ui_port}"
            wait_until_up(
                profile.processes["ui"], profile.ui_url, "the web app", profile.logs / "ui.log"
            )
    except BaseException:  # Ctrl-C too: every part runs in a session of its own
        profile.stop()
        raise
    return profile


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def main(argv: list[str] | None = None) -> int:
    """`make prod-local`: start the profile, wait for Ctrl-C or SIGTERM, stop it."""
    parser = argparse.ArgumentParser(prog="python -m orca_flows.local.profile")
    parser.add_argument("--root", type=Path, help="Directory for its data (default: a new one).")
    parser.add_argument("--workers", type=int, default=3, help="orca worker processes (3).")
    parser.add_argument("--keep", action="store_true", help="Leave the data directory.")
    args = parser.parse_args(argv)
    # SIGTERM during the start stops what was started, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    root = args.root or Path(tempfile.mkdtemp(prefix="orca-profile-"))
    print(f"Production profile in {root}; this takes about a minute.", flush=True)
    try:
        profile = start_profile(root, workers=args.workers, progress=lambda s: print(s, flush=True))
    except (OrcaError, OSError, subprocess.CalledProcessError, KeyboardInterrupt) as error:
        print(f"error: {error or 'interrupted'}", file=sys.stderr)
        if not args.keep and args.root is None:
            shutil.rmtree(root, ignore_errors=True)
        return 1
    exports = {
        k: profile.env[k] for k in sorted(profile.env) if k.startswith(("ORCA_", "PREFECT_"))
    }
    print("\nRunning. To use it from another shell:")
    for key, value in exports.items():
        print(f"  export {key}={shlex.quote(value)}")
    print(f"Web app: {profile.ui_url}  (sign in as {OPERATOR_EMAIL}, password {profile.password})")
    print(f"Prefect UI: {profile.prefect_api_url.removesuffix('/api')}  Logs: {profile.logs}")
    print("Ctrl-C stops everything.", flush=True)
    try:
        _wait_for_signal()
    finally:
        print("Stopping ...", flush=True)
        profile.stop()
        if not args.keep and args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
