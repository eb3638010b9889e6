"""Task Scheduling: cron or interval with a time zone, next five firings, pause/resume/remove."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from orca_flows.db.models import User
from tests.ui.conftest import button, field_errors, offline_pipeline, open_page, texts, widget

pytestmark = pytest.mark.usefixtures("prefect_server")


def set_schedule(
    user: User, *, cron: str | None = None, interval: int | None = None, timezone: str = "UTC"
) -> AppTest:
    app = open_page(user, "task_scheduling")
    widget(app, "radio", "Timing").set_value("Cron expression" if cron is not None else "Interval")
    if cron is not None:
        widget(app, "text_input", "Cron expression").input(cron)
    if interval is not None:
        widget(app, "number_input", "Interval (seconds)").set_value(interval)
    widget(app, "selectbox", "Time zone").set_value(timezone)
    button(app, "Set schedule").click()
    return app.run()


def fire_times(app: AppTest, pipeline: str) -> list[str]:
    panel = app.container(f"schedule-{pipeline}")
    return [line for m in panel.markdown for line in m.value.splitlines() if line.startswith("- ")]


def test_a_cron_schedule_shows_its_next_five_firings_in_words(ann: User) -> None:
    offline_pipeline(ann, "nightly")

    app = set_schedule(ann, cron="0 3 * * *", timezone="Europe/Paris")

    assert app.success[0].value == "Scheduled 'nightly' cron 0 3 * * * (Europe/Paris)."
    firings = fire_times(app, "nightly")
    assert len(firings) == 5
    for firing in firings:  # e.g. "- Thu 26 Nov 2026, 03:00 CET (in 13 h 00 min)"
        assert re.fullmatch(r"- \w{3} \d{2} \w{3} \d{4}, 03:00 CES?T \(in .+\)", firing), firing


def test_an_interval_schedule_reads_as_every(ann: User) -> None:
    offline_pipeline(ann, "hourly")

    app = set_schedule(ann, interval=3600)

    assert "**hourly** · every 1 h 00 min (UTC) · active" in texts(app)
    assert len(fire_times(app, "hourly")) == 5


@pytest.mark.parametrize(
    ("timing", "field", "message"),
    [
        pytest.param(
            {"cron": "61 * * * *"}, "cron", "the minute field '61' is not valid", id="bad-minute"
        ),
        pytest.param({"cron": ""}, "cron", "type a cron expression", id="empty-cron"),
        pytest.param(
            {"interval": 10}, "interval", "shorter than the minimum of 60 s", id="short-interval"
        ),
        pytest.param(
            {"cron": "0 3 *"}, "cron", "has 3 field(s); give exactly 5", id="three-fields"
        ),
    ],
)
def test_a_refused_schedule_says_why_under_the_field(
    ann: User, timing: dict[str, object], field: str, message: str
) -> None:
    offline_pipeline(ann, "nightly")

    app = set_schedule(ann, **timing)  # type: ignore[arg-type]

    [shown] = field_errors(app, "schedule", field)
    assert message in shown
    assert "None yet." in texts(app)


def test_pause_resume_and_remove(ann: User) -> None:
    offline_pipeline(ann, "hourly")
    app = set_schedule(ann, interval=3600)

    button(app, "Pause").click()
    paused = texts(app.run())
    assert "Paused the schedule of 'hourly'." in paused and "· paused" in paused
    assert fire_times(app, "hourly") == []

    button(app, "Resume").click()
    app.run()
    assert len(fire_times(app, "hourly")) == 5

    button(app, "Remove").click()
    app.run()
    assert app.success[0].value == "Removed the schedule of 'hourly'."
    assert "None yet." in texts(app)


def test_without_pipelines_the_page_sends_the_user_to_script_upload(ann: User) -> None:
    app = open_page(ann, "task_scheduling")

    assert "No pipelines yet" in texts(app)
    assert not app.get("form")
