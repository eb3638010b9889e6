"""Task Summary: counts by state, filters, durations chart, pagination, Run buttons."""

from __future__ import annotations

from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from orca_flows.db.base import utcnow
from orca_flows.db.models import User
from orca_flows.domain.states import RunState
from orca_flows.local.sandbox import SandboxState
from tests.ui.conftest import (
    add_script,
    button,
    link_the_sandbox,
    offline_pipeline,
    offline_runs,
    open_page,
    texts,
    widget,
)
from ui.display import state_label

STATES = ["succeeded", "succeeded", "failed", "running", "queued"]


def counts(app: AppTest) -> dict[str, int]:
    labels = {state_label(state): state for state in RunState}
    return {labels[m.label]: int(m.value) for m in app.metric}


def table(app: AppTest) -> list[dict[str, object]]:
    return app.dataframe[0].value.to_dict("records") if app.dataframe else []


def test_counts_table_and_chart_show_the_user_s_runs(ann: User) -> None:
    offline_pipeline(ann, "nightly")
    ids = offline_runs(ann, "nightly", STATES)

    app = open_page(ann, "task_summary")

    assert counts(app) == {
        "queued": 1,
        "running": 1,
        "cancelling": 0,
        "succeeded": 2,
        "failed": 1,
        "timed_out": 0,
        "cancelled": 0,
    }
    rows = table(app)
    assert [row["run"] for row in rows] == ids[::-1]  # newest first
    assert rows[-1]["state"] == "succeeded" and rows[-1]["duration"] == "30.0 s"
    assert "Durations of the 3 most recent finished runs" in texts(app)
    assert app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart")
    [link] = app.get("page_link")
    assert link.proto.label == "Open in Task Overview"
    assert f"run={ids[-1]}" in link.proto.query_string


def test_filters_narrow_the_table_but_not_the_counts(ann: User) -> None:
    offline_pipeline(ann, "nightly")
    offline_pipeline(ann, "hourly")
    offline_runs(ann, "nightly", STATES)
    hourly = offline_runs(ann, "hourly", ["failed"])
    offline_runs(ann, "hourly", ["failed"], start=utcnow() - timedelta(days=40))
    app = open_page(ann, "task_summary")

    widget(app, "multiselect", "State").set_value(["failed"])
    by_state = table(app.run())
    widget(app, "selectbox", "Pipeline").set_value("hourly")
    widget(app, "selectbox", "Requested").set_value("Last 7 days")
    recent_hourly_failures = table(app.run())

    assert {row["state"] for row in by_state} == {"failed"} and len(by_state) == 3
    assert [row["run"] for row in recent_hourly_failures] == hourly
    assert counts(app)["failed"] == 1  # hourly, last 7 days: the state filter does not apply


def test_pages_are_read_from_the_database_one_at_a_time(ann: User) -> None:
    offline_pipeline(ann, "nightly")
    ids = offline_runs(ann, "nightly", ["succeeded"] * 60)
    app = open_page(ann, "task_summary")
    widget(app, "selectbox", "Per page").set_value(25)
    first = table(app.run())

    pager = app.number_input[0]
    pager.set_value(3)
    last = table(app.run())

    assert pager.label == "Page (of 3; 60 runs)"
    assert [row["run"] for row in first] == ids[::-1][:25]
    assert [row["run"] for row in last] == ids[::-1][50:]


def test_without_runs_the_page_says_so(ann: User) -> None:
    app = open_page(ann, "task_summary")

    assert "No runs match these filters." in texts(app)
    assert "No pipelines yet" in texts(app)
    assert set(counts(app).values()) == {0}


@pytest.mark.usefixtures("prefect_server")
def test_the_run_button_queues_a_run(sandbox: SandboxState, ann: User) -> None:
    link_the_sandbox(ann)
    add_script(ann, "nightly", b"echo hi\n")
    app = open_page(ann, "task_summary")

    button(app, "Run nightly").click()
    app.run()

    [row] = table(app)
    assert app.success[0].value == f"Run {row['run']} of 'nightly' queued (#1 of its ordering key)."
    assert row["state"] == "queued"
    assert counts(app)["queued"] == 1
