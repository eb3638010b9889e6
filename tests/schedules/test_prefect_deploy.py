"""`deployments/prefect.yaml`: `prefect deploy --all` accepts it, and a process worker runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import select

from orca_flows.db.engine import session_scope
from orca_flows.db.models import Run, User
from orca_flows.domain.actor import Actor
from orca_flows.local.sandbox import SandboxState
from orca_flows.services.link_creation import create_local_link
from orca_flows.services.pipelines import ScriptFile, add_pipeline
from orca_flows.settings import get_settings
from tests.support.prefect_server import PrefectServer

DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _prefect(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PREFECT, "--no-prompt", *args],
        cwd=DEPLOYMENTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def deployed(prefect_server: PrefectServer) -> dict[str, str]:
    """The `orca` process pool exists and `prefect deploy --all` ran; yields the environment."""
    env = os.environ | {"PREFECT_API_URL": prefect_server.api_url}
    pool = _prefect("work-pool", "create", "orca", "--type", "process", "--overwrite", env=env)
    assert pool.returncode == 0, pool.stdout + pool.stderr
    result = _prefect("deploy", "--all", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return env


def test_prefect_deploy_all_creates_the_submit_deployment(deployed: dict[str, str]) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("orca-submit-run/submit")

    assert deployment.work_pool_name == "orca"
    assert deployment.entrypoint == "orca_flows.flows.submit.submit_pipeline_run"
    assert deployment.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "."}}
    ]
    assert "orca" in deployment.tags and deployment.description
    assert deployment.parameter_openapi_schema["required"] == ["owner_id", "pipeline"]


def test_a_process_worker_runs_the_submit_deployment(
    deployed: dict[str, str], sandbox: SandboxState, ann: User
) -> None:
    settings, actor = get_settings(), Actor(ann.id, ann.email)
    create_local_link(settings, actor, "dev")
    add_pipeline(settings, actor, "etl", ScriptFile("etl.sh", b"echo hi\n"), link_name="dev")
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("orca-submit-run/submit")
        flow_run = client.create_flow_run_from_deployment(
            deployment.id, parameters={"owner_id": ann.id, "pipeline": "etl"}
        )

    worker = _prefect(
        "worker",
        "start",
        "--pool",
        "orca",
        "--run-once",
        env=deployed | {"ORCA_DATABASE_URL": settings.effective_database_url},
        timeout=180,
    )

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run.id).state
    assert state is not None and state.is_completed(), worker.stdout + worker.stderr
    with session_scope(settings.effective_database_url) as session:
        [run] = session.scalars(select(Run)).all()
    assert (run.requested_by, run.state) == ("api", "queued") and run.sqs_message_id
