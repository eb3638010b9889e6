"""Task Scheduling: per pipeline, a cron or interval in a time zone; pause, resume, remove."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import available_timezones

import streamlit as st

from orca_flows.domain.views import ScheduleView
from orca_flows.errors import InvalidInputError
from orca_flows.services.pipelines import list_pipelines
from orca_flows.services.schedules import (
    list_schedules,
    pause_schedule,
    remove_schedule,
    resume_schedule,
    set_schedule,
)
from ui.display import duration, fire_time
from ui.forms import FieldErrors, flash, refusals, show_flash
from ui.session import current_actor, orca_settings

_CRON, _INTERVAL = "Cron expression", "Interval"
_FIRE_TIMES = 5


def _timing(view: ScheduleView) -> str:
    if view.interval_seconds:
        return f"every {duration(view.interval_seconds)} ({view.timezone})"
    return f"cron `{view.cron}` ({view.timezone})"


def _time_zones() -> list[str]:
    zones = sorted(available_timezones())
    browser = st.context.timezone  # the visitor's zone first: the likely choice
    return ["UTC", *([browser] if browser in zones and browser != "UTC" else []), *zones]


def _set_form(pipeline_names: list[str]) -> None:
    errors = FieldErrors("schedule")
    with st.form("set-schedule"):
        with errors.field("pipeline"):
            pipeline = st.selectbox("Pipeline", pipeline_names)
        with errors.field("schedule"):
            kind = st.radio("Timing", [_CRON, _INTERVAL], horizontal=True)
        with errors.field("cron"):
            cron = st.text_input(_CRON, placeholder="0 3 * * *  (every day at 03:00)")
        with errors.field("interval"):
            interval = st.number_input("Interval (seconds)", value=3600, step=60)
        with errors.field("timezone"):
            timezone = st.selectbox("Time zone", _time_zones())
        submitted = st.form_submit_button("Set schedule", type="primary")
        errors.general()
    if submitted:
        with errors.catch(kinds={"pipeline": "pipeline"}):
            if kind == _CRON and not cron.strip():
                raise InvalidInputError(
                    "cron", "type a cron expression, e.g. '0 3 * * *' (every day at 03:00)."
                )
            view = set_schedule(
                orca_settings(),
                current_actor(),
                pipeline or "",
                cron=cron.strip() if kind == _CRON else None,
                interval_seconds=int(interval) if kind == _INTERVAL else None,
                timezone=(timezone or "UTC").strip(),
            )
            flash(f"Scheduled {view.pipeline!r} {_timing(view).replace('`', '')}.")
            st.rerun()


def _schedule_panel(view: ScheduleView) -> None:
    state = "active" if view.active else "paused"
    with st.container(border=True, key=f"schedule-{view.pipeline}"):
        st.markdown(f"**{view.pipeline}** · {_timing(view)} · {state}")
        now = datetime.now(UTC)
        if view.active:
            st.markdown(
                "\n".join(f"- {fire_time(t, view.timezone, now)}" for t in view.next_fire_times)
            )
        else:
            st.caption("Paused: no firings until it is resumed.")
        toggle, remove = st.columns(2)
        action, verb = (pause_schedule, "Paused") if view.active else (resume_schedule, "Resumed")
        if toggle.button("Pause" if view.active else "Resume", key=f"toggle-{view.pipeline}"):
            with refusals():
                action(orca_settings(), current_actor(), view.pipeline)
                flash(f"{verb} the schedule of {view.pipeline!r}.")
                st.rerun()
        if remove.button("Remove", key=f"remove-{view.pipeline}"):
            with refusals():
                remove_schedule(orca_settings(), current_actor(), view.pipeline)
                flash(f"Removed the schedule of {view.pipeline!r}.")
                st.rerun()


st.title("Task Scheduling")
st.caption("A schedule fires while `orca serve` runs; each firing queues one run.")
show_flash()
names = [pipeline.name for pipeline in list_pipelines(orca_settings(), current_actor())]
views = list_schedules(orca_settings(), current_actor(), fire_times=_FIRE_TIMES)

if not names:
    st.info("No pipelines yet: upload a script first.")
    st.page_link(
        "app_pages/script_upload.py", label="Go to Script Upload", icon=":material/upload:"
    )
    st.stop()
_set_form(names)
st.subheader("Schedules")
if not views:
    st.caption("None yet.")
for view in views:
    _schedule_panel(view)
