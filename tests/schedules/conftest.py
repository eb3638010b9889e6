"""Schedule fixtures: the `orca schedule` CLI, pipelines in the database, Prefect look-ups."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
import typer
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound
from sqlalchemy import select
from typer.testing import CliRunner, Result

from orca_flows.cli.schedule import app as schedule_app
from orca_flows.db.engine import session_scope
from orca_flows.db.models import Pipeline, Schedule, User
from orca_flows.db.repositories.links import create_link
from orca_flows.db.repositories.pipelines import create_pipeline
from orca_flows.flows import FLOW_NAME
from orca_flows.services.users import add_user
from orca_flows.settings import get_settings
from tests.conftest import PASSWORD

_cli = typer.Typer()
_cli.add_typer(schedule_app, name="schedule")


def orca(*args: str) -> Result:
    """Run `orca ARGS` in this process (only the `schedule` group)."""
    return CliRunner().invoke(_cli, list(args))


def schedule_rows() -> list[Schedule]:
    with session_scope(get_settings().effective_database_url) as session:
        return list(session.scalars(select(Schedule)))


def read_deployment(deployment_id: str) -> DeploymentResponse | None:
    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment(UUID(deployment_id))
        except ObjectNotFound:
            return None


def submit_deployment_ids() -> set[UUID]:
    """Every deployment of Orca's submit flow on the (shared) Prefect server."""
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME]))
        )
    return {deployment.id for deployment in deployments}


def planned_runs(deployment_id: str) -> int:
    """How many flow runs Prefect has scheduled (not yet started) for the deployment."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[UUID(deployment_id)])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
        )
    return len(runs)


def _pipeline_row(owner: User, name: str) -> Pipeline:
    """A pipeline in the database only (no script in S3): enough to schedule it."""
    with session_scope(get_settings().effective_database_url) as session:
        link = create_link(
            session,
            owner_id=owner.id,
            name="dev",
            region="us-east-1",
            block_document_name=f"orca-link-test-{owner.id}",
        )
        return create_pipeline(
            session, owner_id=owner.id, name=name, link_id=link.id, runner="local"
        )


@pytest.fixture
def etl(ann: User) -> Pipeline:
    """Ann's pipeline `etl` (Ann is the acting user)."""
    return _pipeline_row(ann, "etl")


@pytest.fixture
def bobs_pipeline(ann: User) -> Pipeline:
    """Bob's pipeline `payroll`, which Ann must not be able to see."""
    bob = add_user(get_settings(), "bob@example.com", PASSWORD)
    with session_scope(get_settings().effective_database_url) as session:
        row = session.get_one(User, bob.user_id)
    return _pipeline_row(row, "payroll")


@pytest.fixture
def min_interval(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Lower the shortest interval a schedule may have (ORCA_MIN_SCHEDULE_INTERVAL_SECONDS)."""

    def lower(seconds: int) -> None:
        monkeypatch.setenv("ORCA_MIN_SCHEDULE_INTERVAL_SECONDS", str(seconds))

    return lower
