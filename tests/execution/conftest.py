"""Execution harness: a sandbox link, pipelines whose scripts stamp a ledger, worker processes.

The local runner runs the bootstrap on this host, so a pipeline script can append to a
ledger file whose absolute path is written into the script text: the ledger is the
ground truth of what executed, independent of what Orca's tables say.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from orca_flows.cli.main import app
from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import Run, User
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import FINISHED_RUN_STATES
from orca_flows.local.sandbox import SandboxState
from orca_flows.services.link_creation import create_local_link
from orca_flows.services.pipelines import ScriptFile, add_pipeline
from orca_flows.services.runs import submit_run
from orca_flows.settings import get_settings

ORCA = str(Path(sys.executable).with_name("orca"))
LINK = "dev"
# Timings that keep a test short: a worker notices work, a lapsed lease or a stop in
# about a second. Tests override single values (see ``Workers.start``).
FAST_WORKER = {
    "ORCA_WORKER_POLL_SECONDS": "1",
    "ORCA_WORKER_HEARTBEAT_SECONDS": "1",
    "ORCA_WORKER_LEASE_SECONDS": "5",
    "ORCA_WORKER_VISIBILITY_SECONDS": "10",
}


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` every 0.5 s until it is truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.5)
    return result


# --- the ledger ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    """One line a script wrote: ``start`` or ``end``, its key and run id, a wall-clock time."""

    event: str
    key: str
    run_id: str
    at: float


class Ledger:
    """A file test scripts append ``start|end KEY RUN_ID EPOCH`` lines to."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def stamp_command(self, event: str, key: str) -> str:
        """The bash line that appends a stamp (one short ``>>`` write: atomic)."""
        return (
            f'printf "%s %s %s %s\\n" {event} {key} "$ORCA_RUN_ID" "$(date +%s.%N)" >>{self.path}'
        )

    def script(self, key: str, body: str = "") -> ScriptFile:
        """A bash pipeline script: stamp start, ``body``, stamp end (``key`` names the stamps)."""
        start, end = self.stamp_command("start", key), self.stamp_command("end", key)
        return ScriptFile("job.sh", f"#!/bin/bash\nset -u\n{start}\n{body}\n{end}\n".encode())

    def stamps(self) -> list[Stamp]:
        if not self.path.exists():
            return []
        fields = (line.split() for line in self.path.read_text().splitlines())
        return [Stamp(event, key, run_id, float(at)) for event, key, run_id, at in fields]

    def starts(self, run_id: str) -> list[float]:
        return [s.at for s in self.stamps() if s.event == "start" and s.run_id == run_id]

    def ends(self, run_id: str) -> list[float]:
        return [s.at for s in self.stamps() if s.event == "end" and s.run_id == run_id]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.txt")


# --- link, pipelines, runs ----------------------------------------------------------------


class Orca:
    """Ann's Orca on the sandbox: pipelines and runs through the services, runs read back
    from the database (cheap enough to poll) or as `orca run show --json` prints them."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.settings = get_settings()

    def add_pipeline(self, name: str, script: ScriptFile, **options: Any) -> None:
        """A pipeline on the sandbox link; the local runner unless ``runner`` says otherwise
        (the ledger's path is on this host, and these tests are about the worker)."""
        actor = Actor(self.user.id, self.user.email)
        options.setdefault("runner", "local")
        add_pipeline(self.settings, actor, name, script, link_name=LINK, **options)

    def submit(self, pipeline: str) -> str:
        submitted = submit_run(
            self.settings, Actor(self.user.id, self.user.email), pipeline, requested_by="api"
        )
        assert submitted.message_sent, f"run {submitted.run_id}'s message was not sent"
        return submitted.run_id

    def show(self, run_id: str) -> dict[str, Any]:
        """`orca run show RUN_ID --json`."""
        return json.loads(self.cli("run", "show", run_id, "--json"))

    def cli(self, *args: str) -> str:
        """An `orca` command in this process; fails the test on a non-zero exit."""
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, f"orca {' '.join(args)}: {result.output}"
        return result.stdout

    def runs(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Runs by id, read from the database, with the fields `orca run show --json` names."""
        fields = (
            "state",
            "ordering_key",
            "sequence",
            "attempt",
            "exit_code",
            "command_id",
            "lease_owner",
            "error_summary",
        )
        with session_scope(self.settings.effective_database_url) as session:
            found = session.query(Run).filter(Run.id.in_(run_ids))
            return {run.id: {"id": run.id} | {f: getattr(run, f) for f in fields} for run in found}

    def states(self, run_ids: list[str]) -> dict[str, str]:
        return {run_id: run["state"] for run_id, run in self.runs(run_ids).items()}

    def wait_finished(self, run_ids: list[str], timeout: float) -> dict[str, str]:
        """Wait until every run is in a final state; returns their states."""

        def finished() -> dict[str, str] | None:
            states = self.states(run_ids)
            return states if all(s in FINISHED_RUN_STATES for s in states.values()) else None

        try:
            return wait_until(finished, timeout, "runs finished")
        except AssertionError:
            states = self.states(run_ids)
            raise AssertionError(f"runs not finished within {timeout:.0f}s: {states}") from None


@pytest.fixture
def orca(sandbox: SandboxState, ann: User, prefect_server: Any) -> Orca:
    """Ann with a link to the sandbox (runner: local)."""
    create_local_link(get_settings(), Actor(ann.id, ann.email), LINK)
    return Orca(ann)


# --- worker processes ---------------------------------------------------------------------


class Workers:
    """`orca worker` processes with this test's ORCA_HOME and short timings."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, count: int = 1, *, concurrency: int = 3, **timings: str
    ) -> list[subprocess.Popen[bytes]]:
        """Start ``count`` workers; ``timings`` override FAST_WORKER (``ORCA_WORKER_*``)."""
        env = os.environ | FAST_WORKER | timings
        started = []
        for _ in range(count):
            log = open(self.log_dir / f"worker-{len(self.processes)}.log", "wb")
            process = subprocess.Popen(
                [ORCA, "worker", "--concurrency", str(concurrency)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
            self.processes.append(process)
            started.append(process)
        return started

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-6000:]}"
            for path in sorted(self.log_dir.glob("worker-*.log"))
        )

    def stop(self) -> None:
        """SIGTERM every worker still running (SIGKILL after 20 s)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(orca: Orca, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    """Start workers with ``workers.start``; all are stopped (before the sandbox) at teardown.

    A failing test prints the workers' logs.
    """
    pool = Workers(tmp_path)
    yield pool
    pool.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(pool.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # Let fixtures see whether the test itself failed (to print the workers' logs).
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie has exited; only its reaping is pending)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where a script writes its pid (and its children's); all are killed at teardown."""
    path = tmp_path / "pids"
    yield path
    for pid in map(int, path.read_text().split() if path.exists() else []):
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def run_events(api_url: str, run_id: str) -> list[dict[str, Any]]:
    """The events the server has stored for run ``run_id`` (its events API)."""
    response = httpx.post(
        f"{api_url}/events/filter",
        json={
            "filter": {
                "any_resource": {"id": [f"orca.run.{run_id}"]},
                "occurred": {"since": (utcnow() - timedelta(hours=1)).isoformat()},
            },
            "limit": 50,
        },
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["events"]
