"""Task Overview: one run's timeline, live log, outputs, Stop / Re-run, Prefect link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import streamlit as st

from orca_flows.domain.states import FINISHED_RUN_STATES, RunState
from orca_flows.errors import NotFoundError
from orca_flows.services.auth import signed_in_user
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.services.run_outputs import output_name, read_output
from orca_flows.services.runs import RunView, get_run, read_log, stop_run, view_run
from orca_flows.settings import OrcaSettings
from ui.display import duration, moment, prefect_flow_run_url, state_label
from ui.forms import flash, refusals, show_flash
from ui.session import database_session, prefect_settings, require_user, submit_as_user, user_scope

# The page shows the log's tail; the whole log is one download away.
_LOG_TAIL_CHARS = 200_000
_REFRESH_SECONDS = 2.0


@dataclass(frozen=True)
class _Loaded:
    view: RunView
    log: str
    outputs: dict[str, str]  # file name -> s3:// URI
    flow_run_url: str | None


def _load(run_id: str) -> _Loaded:
    with user_scope(prefect=True) as scope:
        run = get_run(scope.session, scope.user, run_id)
        view = view_run(run)
        log = read_log(run).decode("utf-8", errors="replace")
        outputs = {output_name(run, uri): uri for uri in view.outputs}
        return _Loaded(view, log, outputs, prefect_flow_run_url(view.flow_run_id))


def _output_bytes(settings: OrcaSettings, user_id: int, run_id: str, uri: str) -> Callable[[], bytes]:
    # Streamlit calls this on click, outside any page run, so it carries what it needs
    # and checks ownership again rather than trusting what was rendered.
    def fetch() -> bytes:
        with prefect_api(settings), database_session() as session:
            run = get_run(session, signed_in_user(session, user_id), run_id)
            return read_output(run, uri)

    return fetch


def _elapsed(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _timeline(view: RunView) -> None:
    st.markdown(f"- **requested** {moment(view.requested_at)} by {view.requested_by}")
    if view.started_at:
        waited = duration(_elapsed(view.requested_at, view.started_at))
        st.markdown(f"- **started** {moment(view.started_at)} after {waited} in the queue")
    if view.finished_at:
        ran = duration(_elapsed(view.started_at or view.requested_at, view.finished_at))
        st.markdown(f"- **{view.state}** {moment(view.finished_at)} after {ran}")


def _actions(view: RunView) -> None:
    buttons = st.container(horizontal=True)
    if view.state in (RunState.QUEUED, RunState.RUNNING) and buttons.button("Stop", type="primary"):
        with refusals():
            with user_scope(prefect=True) as scope:
                was = stop_run(scope.session, scope.user, view.id)
            flash(f"Run {view.id} was {was}; it is now cancelled.")
            st.rerun()
    if buttons.button(f"Re-run {view.pipeline}", help="Runs the pipeline's current script version."):
        with refusals():
            submitted = submit_as_user(view.pipeline)
            flash(f"Run {submitted.run_id} of {view.pipeline!r} queued.")
            st.query_params["run"] = submitted.run_id
            st.rerun()


def _outputs(loaded: _Loaded) -> None:
    st.subheader("Outputs")
    if not loaded.outputs:
        st.caption("None yet." if loaded.view.state not in FINISHED_RUN_STATES else "The run left no files.")
    user_id = require_user().user_id
    with prefect_settings() as settings:
        for name, uri in loaded.outputs.items():
            st.download_button(
                f"Download {name}", _output_bytes(settings, user_id, loaded.view.id, uri),
                file_name=name.rsplit("/", 1)[-1], key=f"output-{name}", on_click="ignore",
            )


def _is_live(run_id: str) -> bool:
    try:
        with user_scope() as scope:
            return get_run(scope.session, scope.user, run_id).state in (RunState.QUEUED, RunState.RUNNING)
    except NotFoundError:
        return False  # _show says so, in the same words as for any unknown id


def _show(run_id: str) -> None:
    with refusals():
        loaded = _load(run_id)
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
        if loaded.flow_run_url:
            st.link_button("Open the flow run in Prefect", loaded.flow_run_url)
        _actions(view)
        st.subheader("Log")
        st.code(loaded.log[-_LOG_TAIL_CHARS:] or "(no output yet)", language=None)
        st.download_button("Download the full log", loaded.log, file_name=f"{view.id}.log", on_click="ignore")
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
    st.caption(f"Live: refreshing every {_REFRESH_SECONDS:.0f} s while the run is queued or running.")
    st.fragment(run_every=_REFRESH_SECONDS)(_show)(run_id)
else:
    st.session_state.pop("overview_live", None)
    _show(run_id)
