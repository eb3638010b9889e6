"""What one firing of a schedule may do: Orca's row decides, not only Prefect's deployment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import Pipeline, Run
from orca_flows.errors import InvalidStateError
from orca_flows.services.firings import submit_firing
from orca_flows.settings import get_settings
from tests.schedules.conftest import orca, schedule_rows

pytestmark = pytest.mark.usefixtures("prefect_server")


def _fire(pipeline: Pipeline, schedule_id: int, deployment_id: str | None, late: timedelta):
    return submit_firing(
        get_settings(),
        pipeline.owner_id,
        pipeline.name,
        schedule_id=schedule_id,
        deployment_id=deployment_id,
        scheduled_for=utcnow() - late,
    )


def _run_count() -> int:
    with session_scope(get_settings().effective_database_url) as session:
        return session.scalar(select(func.count()).select_from(Run))


def test_a_firing_of_a_paused_schedule_submits_nothing(etl: Pipeline) -> None:
    orca("schedule", "set", "etl", "--interval", "60")
    orca("schedule", "pause", "etl")
    [row] = schedule_rows()

    firing = _fire(etl, row.id, row.deployment_id, timedelta(0))

    assert firing.run_id is None and "is paused" in firing.reason
    assert _run_count() == 0


def test_a_firing_overdue_by_more_than_its_period_and_the_grace_is_skipped(etl: Pipeline) -> None:
    orca("schedule", "set", "etl", "--interval", "60")
    [row] = schedule_rows()

    firing = _fire(etl, row.id, row.deployment_id, timedelta(hours=1))

    assert firing.run_id is None and "late" in firing.reason and "serve" in firing.reason
    assert _run_count() == 0


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        pytest.param(False, "fires through deployment", id="another-deployment"),
        pytest.param(True, "no longer exists", id="schedule-removed"),
    ],
)
def test_a_left_over_deployment_cannot_submit(etl: Pipeline, remove: bool, message: str) -> None:
    orca("schedule", "set", "etl", "--interval", "60")
    [row] = schedule_rows()
    if remove:
        orca("schedule", "remove", "etl")
    stray = "00000000-0000-4000-8000-000000000000" if not remove else row.deployment_id

    with pytest.raises(InvalidStateError, match=message):
        _fire(etl, row.id, stray, timedelta(0))
    assert _run_count() == 0
