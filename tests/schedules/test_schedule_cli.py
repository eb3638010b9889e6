"""`orca schedule set | list | pause | resume | remove` against a real Prefect server."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from orca_flows.db.models import Pipeline
from orca_flows.settings import get_settings
from tests.schedules.conftest import (
    orca,
    planned_runs,
    read_deployment,
    schedule_rows,
    submit_deployment_ids,
)

pytestmark = pytest.mark.usefixtures("prefect_server")


def _wait_for_planned_runs(deployment_id: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while (count := planned_runs(deployment_id)) == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    return count


def test_set_creates_a_deployment_with_the_schedule_tags_and_parameters(etl: Pipeline) -> None:
    result = orca("schedule", "set", "etl", "--interval", "60", "--json")

    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    [row] = schedule_rows()
    assert (row.pipeline_id, row.interval_seconds, row.cron, row.active) == (etl.id, 60, None, True)
    assert row.deployment_id == view["deployment_id"]
    deployment = read_deployment(row.deployment_id)
    assert deployment is not None and not deployment.paused
    [schedule] = deployment.schedules
    assert schedule.active and schedule.schedule.interval == timedelta(seconds=60)
    assert set(deployment.tags) == {"orca", "pipeline:etl", f"user:{etl.owner_id}"}
    assert deployment.parameters == {
        "owner_id": etl.owner_id,
        "pipeline": "etl",
        "schedule_id": row.id,
    }
    assert "pipeline 'etl'" in deployment.description and "orca schedule" in deployment.description
    assert deployment.entrypoint == "orca_flows.flows.submit.submit_pipeline_run"
    # The process pool `orca serve` works on, created by the first `orca schedule set`.
    assert deployment.work_pool_name == get_settings().schedule_work_pool
    fire_times = [datetime.fromisoformat(moment) for moment in view["next_fire_times"]]
    assert [
        later - earlier for earlier, later in zip(fire_times, fire_times[1:], strict=False)
    ] == [timedelta(seconds=60)] * 2


def test_set_again_updates_the_same_deployment(etl: Pipeline) -> None:
    orca("schedule", "set", "etl", "--interval", "60")
    [before] = schedule_rows()

    result = orca("schedule", "set", "etl", "--cron", "0 3 * * *", "--timezone", "Europe/Paris")

    assert result.exit_code == 0, result.output
    [after] = schedule_rows()
    assert (after.id, after.deployment_id) == (before.id, before.deployment_id)
    assert (after.cron, after.interval_seconds, after.timezone) == (
        "0 3 * * *",
        None,
        "Europe/Paris",
    )
    [schedule] = read_deployment(after.deployment_id).schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 3 * * *", "Europe/Paris")


def test_list_shows_next_fire_times_in_the_schedules_time_zone(etl: Pipeline) -> None:
    orca("schedule", "set", "etl", "--cron", "0 3 * * *", "--timezone", "Europe/Paris")

    listed = orca("schedule", "list", "--json")
    table = orca("schedule", "list")

    assert listed.exit_code == 0, listed.output
    [view] = json.loads(listed.stdout)
    assert (view["pipeline"], view["cron"], view["active"]) == ("etl", "0 3 * * *", True)
    paris = ZoneInfo("Europe/Paris")
    fire_times = [datetime.fromisoformat(moment) for moment in view["next_fire_times"]]
    assert len(fire_times) == 3
    for moment in fire_times:
        assert moment.hour == 3 and moment.utcoffset() == moment.astimezone(paris).utcoffset()
    assert fire_times[0] > datetime.now(paris)
    assert "cron '0 3 * * *' (Europe/Paris)" in table.stdout
    assert fire_times[0].strftime("%Y-%m-%d 03:00:00 %Z") in table.stdout


def test_pause_stops_firings_and_resume_restarts_them(etl: Pipeline) -> None:
    orca("schedule", "set", "etl", "--interval", "60")
    [row] = schedule_rows()
    assert _wait_for_planned_runs(row.deployment_id) > 0  # Prefect planned the next firings

    paused = orca("schedule", "pause", "etl")

    assert paused.exit_code == 0, paused.output
    assert read_deployment(row.deployment_id).paused
    assert planned_runs(row.deployment_id) == 0  # nothing left to fire
    [view] = json.loads(orca("schedule", "list", "--json").stdout)
    assert view["active"] is False and view["next_fire_times"] == []

    resumed = orca("schedule", "resume", "etl")

    assert resumed.exit_code == 0, resumed.output
    assert not read_deployment(row.deployment_id).paused
    assert schedule_rows()[0].active
    assert _wait_for_planned_runs(row.deployment_id) > 0


def test_remove_deletes_the_deployment_and_the_row(etl: Pipeline) -> None:
    orca("schedule", "set", "etl", "--interval", "3600")
    [row] = schedule_rows()

    removed = orca("schedule", "remove", "etl")
    again = orca("schedule", "remove", "etl")

    assert removed.exit_code == 0, removed.output
    assert read_deployment(row.deployment_id) is None
    assert schedule_rows() == []
    assert again.exit_code == 1
    assert "schedule of pipeline 'etl' does not exist" in again.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            ["--cron", "61 * * * *"], "the minute field '61' is not valid", id="cron-minute-61"
        ),
        pytest.param(["--cron", "* * *"], "has 3 field(s); give exactly 5", id="cron-3-fields"),
        pytest.param(["--cron", ""], "has 0 field(s); give exactly 5", id="cron-empty"),
        pytest.param(["--cron", "0 0 31 2 *"], "never fires", id="cron-31-february"),
        pytest.param(
            ["--interval", "60", "--timezone", "Mars/Olympus"],
            "time zone 'Mars/Olympus' is not an IANA time zone name",
            id="unknown-time-zone",
        ),
        pytest.param(
            ["--interval", "60", "--timezone", "europe/paris"],
            "did you mean Europe/Paris?",
            id="time-zone-case",
        ),
        pytest.param(
            ["--interval", "0"], "must be a positive number of seconds, not 0", id="interval-0"
        ),
        pytest.param(["--interval", "-60"], "not -60", id="interval-negative"),
        pytest.param(
            ["--interval", "30"], "shorter than the minimum of 60 s", id="interval-below-minimum"
        ),
    ],
)
def test_bad_timing_is_refused_with_what_is_wrong(
    etl: Pipeline, options: list[str], message: str
) -> None:
    deployments = submit_deployment_ids()

    result = orca("schedule", "set", "etl", *options)

    assert result.exit_code == 1
    assert message in result.stderr
    assert schedule_rows() == []
    assert submit_deployment_ids() == deployments


@pytest.mark.parametrize(
    "pipeline",
    [
        pytest.param("nightly", id="unknown-pipeline"),
        pytest.param("payroll", id="another-users-pipeline"),
    ],
)
def test_a_pipeline_the_user_does_not_have_is_refused(
    etl: Pipeline, bobs_pipeline: Pipeline, pipeline: str
) -> None:
    deployments = submit_deployment_ids()

    result = orca("schedule", "set", pipeline, "--interval", "3600")

    assert result.exit_code == 1
    assert f"pipeline {pipeline!r} does not exist" in result.stderr
    assert schedule_rows() == []
    assert submit_deployment_ids() == deployments


def test_cron_and_interval_together_is_a_usage_error(etl: Pipeline) -> None:
    result = orca("schedule", "set", "etl", "--cron", "0 3 * * *", "--interval", "3600")

    assert result.exit_code == 2
    assert schedule_rows() == []


def test_unreachable_prefect_is_reported_and_nothing_is_created(etl: Pipeline) -> None:
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        result = orca("schedule", "set", "etl", "--interval", "3600")

    assert result.exit_code == 1
    assert "the Prefect API at http://127.0.0.1:9/api cannot be reached" in result.stderr
    assert schedule_rows() == []


def test_pause_with_prefect_unreachable_changes_nothing(etl: Pipeline) -> None:
    orca("schedule", "set", "etl", "--interval", "3600")

    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        result = orca("schedule", "pause", "etl")

    assert result.exit_code == 1 and "cannot be reached" in result.stderr
    [row] = schedule_rows()
    assert row.active and not read_deployment(row.deployment_id).paused


def test_a_failure_after_the_deployment_is_written_removes_it_again(
    etl: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orca_flows.errors import DatabaseError
    from orca_flows.services import schedules

    deployments = submit_deployment_ids()

    def fail(*args: object, **kwargs: object) -> None:
        raise DatabaseError("the database went away")

    monkeypatch.setattr(schedules, "_view", fail)  # runs after the deployment, before commit

    result = orca("schedule", "set", "etl", "--interval", "3600")

    assert result.exit_code == 1 and "the database went away" in result.stderr
    assert schedule_rows() == []
    assert submit_deployment_ids() == deployments


def test_without_a_prefect_server_set_says_how_to_get_one(etl: Pipeline) -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = orca("schedule", "set", "etl", "--interval", "3600")

    assert result.exit_code == 1
    assert "schedules need a Prefect server" in result.stderr and "orca local up" in result.stderr
    assert schedule_rows() == []


def test_a_user_lists_only_their_own_schedules(etl: Pipeline, bobs_pipeline: Pipeline) -> None:
    orca("schedule", "set", "etl", "--interval", "3600")

    bobs = orca("schedule", "list", "--json", "--user", "bob@example.com")
    pause = orca("schedule", "pause", "etl", "--user", "bob@example.com")

    assert json.loads(bobs.stdout) == []
    assert pause.exit_code == 1 and "pipeline 'etl' does not exist" in pause.stderr
    assert schedule_rows()[0].active
