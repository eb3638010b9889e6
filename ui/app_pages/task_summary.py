"""Task Summary: all the user's runs, filtered, counted, charted and paged; Run buttons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from orca_flows.domain.states import RunState
from orca_flows.services.pipelines import list_pipelines
from orca_flows.services.runs import submit_run
from orca_flows.services.summary import RunFilter, summarize_runs
from ui.display import duration, moment, state_label
from ui.forms import flash, refusals, show_flash
from ui.session import current_actor, orca_settings

_PERIODS = {
    "All time": None,
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
}
_ALL = "All pipelines"
_DURATIONS_CHART = {
    "height": 260,
    "mark": {"type": "circle", "size": 60},
    "encoding": {
        "x": {
            "field": "finished",
            "type": "temporal",
            "title": "finished (your local time)",
            "axis": {"format": "%d %b %H:%M"},
        },
        "y": {"field": "seconds", "type": "quantitative", "title": "duration (s)"},
        "color": {"field": "pipeline", "type": "nominal"},
        "tooltip": [{"field": f} for f in ("pipeline", "state", "seconds", "finished")],
    },
}


def _run_buttons(pipeline_names: list[str]) -> None:
    st.subheader("Run a pipeline")
    if not pipeline_names:
        st.info("No pipelines yet: upload a script first.")
        st.page_link(
            "app_pages/script_upload.py", label="Go to Script Upload", icon=":material/upload:"
        )
        return
    columns = st.columns(4)
    for index, name in enumerate(pipeline_names):
        if columns[index % 4].button(f"Run {name}", key=f"run-{name}"):
            with refusals():
                actor = current_actor()
                submitted = submit_run(
                    orca_settings(), actor, name, requested_by=f"user:{actor.user_id}"
                )
                flash(
                    f"Run {submitted.run_id} of {name!r} queued "
                    f"(#{submitted.sequence} of its ordering key)."
                )
                st.rerun()


def _filters(pipeline_names: list[str]) -> tuple[RunFilter, int]:
    pipeline, states, period, size = st.columns([2, 3, 2, 1])
    chosen = pipeline.selectbox("Pipeline", [_ALL, *pipeline_names])
    picked = states.multiselect("State", list(RunState))
    window = _PERIODS[period.selectbox("Requested", list(_PERIODS))]
    page_size = size.selectbox("Per page", [25, 50, 100], index=1)
    runs = RunFilter(
        pipeline=None if chosen == _ALL else chosen,
        states=tuple(picked),
        since=datetime.now(UTC) - window if window else None,
    )
    return runs, page_size


st.title("Task Summary")
show_flash()
names = [p.name for p in list_pipelines(orca_settings(), current_actor())]
_run_buttons(names)

st.subheader("Runs")
runs, page_size = _filters(names)
summary = summarize_runs(
    orca_settings(),
    current_actor(),
    runs,
    page=st.session_state.get("summary_page", 1),
    page_size=page_size,
)
counts, points, page = summary.counts, summary.points, summary.page
# The service clamps a page past the end (a narrower filter); the pager follows it.
st.session_state["summary_page"] = page.page

for column, (state, count) in zip(st.columns(len(counts)), counts.items(), strict=True):
    column.metric(state_label(state), count)

if points:
    st.caption(f"Durations of the {len(points)} most recent finished runs")
    # A plain Vega-Lite spec with the data sent as Arrow: Altair would validate 1,000
    # inline points against its JSON schema on every render (hundreds of ms).
    st.vega_lite_chart(
        [
            {
                "finished": p.finished_at,
                "seconds": p.seconds,
                "pipeline": p.pipeline,
                "state": p.state,
            }
            for p in points
        ],
        _DURATIONS_CHART,
    )

if not page.rows:
    st.info("No runs match these filters.")
else:
    st.dataframe(
        [
            {
                "run": row.id,
                "pipeline": row.pipeline,
                "state": row.state,
                "requested": moment(row.requested_at),
                "duration": duration(row.duration_seconds),
                "version": row.script_version,
                "exit code": row.exit_code,
            }
            for row in page.rows
        ],
        hide_index=True,
    )
    pager, chosen_run, link = st.columns([1, 3, 2], vertical_alignment="bottom")
    pager.number_input(
        f"Page (of {page.pages}; {page.total} runs)",
        min_value=1,
        max_value=page.pages,
        key="summary_page",
    )
    labels = {row.id: f"{row.id[:8]} · {row.pipeline} · {row.state}" for row in page.rows}
    run_id = chosen_run.selectbox("Run", list(labels), format_func=labels.__getitem__)
    link.page_link(
        "app_pages/task_overview.py",
        label="Open in Task Overview",
        query_params={"run": run_id},
        icon=":material/visibility:",
    )
