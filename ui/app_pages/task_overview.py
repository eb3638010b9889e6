"""Task Overview: one run's timeline, live log, outputs, Stop / Re-run, Prefect link."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from orca_flows.domain.actor import Actor
from orca_flows.domain.states import FINISHED_RUN_STATES, RunState
from orca_flows.domain.views import RunView, elapsed_seconds
from orca_flows.errors import NotFoundError
from orca_flows.services.run_outputs import read_output
from orca_flows.services.runs import RunDetails, run_details, stop_run, submit_run, view_run
from orca_flows.settings import OrcaSettings
from ui.display import duration, moment, state_label
from ui.forms import flash, refusals, show_flash
from ui.session import current_actor, orca_settings

# The page shows the log's tail; the whole log is one download away.
_LOG_TAIL_CHARS = 200_000
_REFRESH_SECONDS = 2.0


def _output_bytes(
    settings: OrcaSettings, actor: Actor, run_id: str, uri: str
) -> Callable[[], bytes]:
    # Streamlit calls this on click, outside any page run, so it carries what it needs;
    # the service checks ownership again rather than trusting what was rendered.
    def fetch() -> bytes:
        return read_output(settings, actor, run_id, uri)

    return fetch


def _timeline(view: RunView) -> None:
    st.markdown(f"- **requested** {moment(view.requested_at)} by {view.requested_by}")
    if view.started_at:
        waited = duration(elapsed_seconds(view.requested_at, view.started_at))
        st.markdown(f"- **started** {moment(view.started_at)} after {waited} in the queue")
    if view.finished_at:
        ran = duration(elapsed_seconds(view.started_at or view.requested_at, view.finished_at))
        st.markdown(f"- **{view.state}** {moment(view.finished_at)} after {ran}")


def _actions(view: RunView) -> None:
    buttons = st.container(horizontal=True)
    if view.state in (RunState.QUEUED, RunState.RUNNING) and buttons.button("Stop", type="primary"):
        with refusals():
            was = stop_run(orca_settings(), current_actor(), view.id)
            now = view_run(orca_settings(), current_actor(), view.id, with_outputs=False).state
            if now == RunState.CANCELLING:
                flash(
                    f"Run {view.id} was {was}; it is now cancelling: its process is being "
                    "killed, and the next run of its key waits until it is confirmed gone."
                )
            else:
                flash(f"Run {view.id} was {was}; it is now {now}.")
            st.rerun()
    if buttons.button(
        f"Re-run {view.pipeline}", help="Runs the pipeline's current script version."
    ):
        with refusals():
            actor = current_actor()
            submitted = submit_run(
                orca_settings(), actor, view.pipeline, requested_by=f"user:{actor.user_id}"
            )
            flash(f"Run {submitted.run_id} of {view.pipeline!r} queued.")
            st.query_params["run"] = submitted.run_id
            st.rerun()


def _outputs(loaded: RunDetails) -> None:
    st.subheader("Outputs")
    if not loaded.outputs:
        st.caption(
            "None yet."
            if loaded.view.state not in FINISHED_RUN_STATES
            else "The run left no files."
        )
    settings, actor = orca_settings(), current_actor()
    for output in loaded.outputs:
        st.download_button(
            f"Download {output.name}",
            _output_bytes(settings, actor, loaded.view.id, output.uri),
            file_name=output.name.rsplit("/", 1)[-1],
            key=f"output-{output.name}",
            on_click="ignore",
        )


def _is_live(run_id: str) -> bool:
    try:
        view = view_run(orca_settings(), current_actor(), run_id, with_outputs=False)
    except NotFoundError:
        return False  # _show says so, in the same words as for any unknown id
    return not view.finished  # queued, running or cancelling


def _show(run_id: str) -> None:
    with refusals():
        loaded = run_details(orca_settings(), current_actor(), run_id)
        view = loaded.view
        st.subheader(f"{state_label(view.state)} · {view.pipeline}")
        st.caption(
            f"Run {view.id} · #{view.sequence} of ordering key {view.ordering_key} · attempt {view.attempt}"
        )
        _timeline(view)
        st.markdown(f"Script version **{view.script_version}** · sha256 `{view.script_sha256}`")
        ending = [f"Exit code **{view.exit_code}**"] if view.exit_code is not None else []
        if ending or view.error:
            st.markdown(" · ".join(ending + ([view.error] if view.error else [])))
        if loaded.flow_run_url:  # operators only: run_details gives a tenant none
            st.link_button("Open the flow run in Prefect", loaded.flow_run_url)
        _actions(view)
        st.subheader("Log")
        log = loaded.log.decode("utf-8", errors="replace")
        st.code(log[-_LOG_TAIL_CHARS:] or "(no output yet)", language=None)
        st.download_button(
            "Download the full log", log, file_name=f"{view.id}.log", on_click="ignore"
        )
        _outputs(loaded)
        if view.state in FINISHED_RUN_STATES and st.session_state.get("overview_live") == run_id:
            # It finished while the page refreshed: one full rerun stops the refreshing.
            st.session_state.pop("overview_live")
            st.rerun()


st.title("Task Overview")
show_flash()
run_id = st.text_input(
    "Run id", value=st.query_params.get("run", ""), placeholder="open a run from Task Summary"
).strip()
if run_id != st.query_params.get("run", ""):
    st.query_params["run"] = run_id  # the address bar names the run: a shareable link
if not run_id:
    st.info("Open a run from Task Summary, or paste its id.")
    st.page_link("app_pages/task_summary.py", label="Go to Task Summary", icon=":material/list:")
    st.stop()

if _is_live(run_id):
    st.session_state["overview_live"] = run_id
    st.caption(
        f"Live: refreshing every {_REFRESH_SECONDS:.0f} s while the run is queued or running."
    )
    st.fragment(run_every=_REFRESH_SECONDS)(_show)(run_id)
else:
    st.session_state.pop("overview_live", None)
    _show(run_id)
