"""`orca serve` as a real process fires schedules: a Run requested by the schedule, and its message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from sqlalchemy import select

from orca_flows.db.engine import session_scope
from orca_flows.db.models import Pipeline, Run, User
from orca_flows.domain.actor import Actor
from orca_flows.local.sandbox import SandboxState
from orca_flows.services.link_creation import create_local_link
from orca_flows.services.links import link_access
from orca_flows.services.pipelines import ScriptFile, add_pipeline
from orca_flows.settings import get_settings
from tests.schedules.conftest import orca, read_deployment, schedule_rows

pytestmark = pytest.mark.usefixtures("prefect_server")

INTERVAL = 5
_SERVE = "import typer; from orca_flows.cli.serve import serve; typer.run(serve)"


def _runs(requested_by: str) -> list[Run]:
    with session_scope(get_settings().effective_database_url) as session:
        return list(session.scalars(select(Run).where(Run.requested_by == requested_by)))


def _wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s; `orca serve` log:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)


@pytest.fixture
def etl(sandbox: SandboxState, ann: User) -> str:
    """Ann's pipeline `etl` on the sandbox link `dev` (script in the emulator's S3)."""
    settings, actor = get_settings(), Actor(ann.id, ann.email)
    create_local_link(settings, actor, "dev")
    add_pipeline(settings, actor, "etl", ScriptFile("etl.sh", b"echo hi\n"), link_name="dev")
    return "etl"


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> str:
    """A work pool of this test's own: the Prefect server is shared by the session's tests."""
    name = f"orca-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("ORCA_SCHEDULE_WORK_POOL", name)
    return name


@pytest.fixture
def serve(tmp_path: Path, orca_home: Path, pool: str) -> Iterator[Callable[[], Path]]:
    """Start `orca serve` in its own process (this test's database, pool and Prefect API)."""
    log = tmp_path / "serve.log"
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> Path:
        env = os.environ | {
            "ORCA_HOME": str(orca_home),
            "ORCA_DATABASE_URL": get_settings().effective_database_url,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        }
        with log.open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", _SERVE, "--refresh", "1"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
        return log

    yield start
    for process in processes:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert process.returncode == 0, log.read_text()[-4000:]


def _strip_pool(deployment_id: str) -> None:
    """Make the deployment one written before work pools (no pool, as Orca <= issue 11 did)."""
    with get_client(sync_client=True) as client:
        client.update_deployment(UUID(deployment_id), DeploymentUpdate(work_pool_name=None))


def test_serve_fires_the_schedule_and_pause_stops_it(
    etl: str, serve: Callable[[], Path], pool: str, min_interval: Callable[[int], None]
) -> None:
    min_interval(INTERVAL)
    created = orca("schedule", "set", etl, "--interval", str(INTERVAL), "--json")
    assert created.exit_code == 0, created.output
    schedule_id = json.loads(created.stdout)["id"]
    deployment_id = json.loads(created.stdout)["deployment_id"]
    deployment = read_deployment(deployment_id)
    assert deployment is not None and deployment.work_pool_name == pool
    # As if written by an older Orca: `orca serve` moves it into the pool and fires it.
    _strip_pool(deployment_id)
    serve_log = serve()
    requested_by = f"schedule:{schedule_id}"

    _wait_for(
        lambda: any(run.sqs_message_id for run in _runs(requested_by)),
        90,
        "no run was submitted",
        serve_log,
    )

    run = next(run for run in _runs(requested_by) if run.sqs_message_id)
    assert run.state == "queued"
    with session_scope(get_settings().effective_database_url) as session:
        link = session.get(Pipeline, run.pipeline_id).link
    queue = link_access(link).queue()  # a Prefect call: after the transaction
    bodies = [json.loads(message.body) for message in queue.receive(wait_seconds=2)]
    assert {"run_id": run.id} in bodies

    paused = orca("schedule", "pause", etl)
    assert paused.exit_code == 0, paused.output
    time.sleep(2)  # a firing that was already past its checks may still land
    count = len(_runs(requested_by))
    time.sleep(3 * INTERVAL)
    assert len(_runs(requested_by)) == count

    removed = orca("schedule", "remove", etl)
    assert removed.exit_code == 0, removed.output
    assert schedule_rows() == []
    assert read_deployment(deployment_id) is None
