"""Script Upload: a new pipeline with its settings, or a new version of one's script."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from orca_flows.domain.rules import MAX_PIPELINE_TIMEOUT_SECONDS
from orca_flows.domain.views import PipelineView
from orca_flows.errors import InvalidInputError
from orca_flows.services.links import list_links
from orca_flows.services.pipelines import (
    ScriptFile,
    add_pipeline,
    list_pipelines,
    runners_for_link,
    upload_version,
)
from ui.display import moment
from ui.forms import FieldErrors, flash, show_flash
from ui.session import current_actor, orca_settings

_RUNNERS = {
    "local": "local: on Orca's own host",
    "ssm": "ssm: on your EC2 instances",
}


def _script(upload: UploadedFile | None) -> ScriptFile:
    if upload is None:
        raise InvalidInputError("script", "choose the .sh or .py file to upload.")
    return ScriptFile(upload.name, upload.getvalue())


def _uploader() -> UploadedFile | None:
    # No type filter here: the service decides, and its refusal names the rule.
    return st.file_uploader("Script (.sh run by bash, .py run by python3)")


def _runners(sandbox_link: bool) -> list[str]:
    """The runners offered on a link, the service's default (ssm, on every link) first."""
    offered = runners_for_link(orca_settings(), sandbox_link=sandbox_link)
    return sorted(offered, key=lambda runner: runner != "ssm")


def _new_pipeline(links: dict[str, bool]) -> None:
    if not links:
        st.info("Link a cloud account first: a pipeline runs through one of your links.")
        st.page_link("app_pages/cloud_setup.py", label="Go to Cloud Setup", icon=":material/cloud:")
        return
    errors = FieldErrors("pipeline")
    # Outside the form: choosing a link reruns the page, so the runners offered are that
    # link's (the local runner only on a sandbox link, unless the operator allows it).
    with errors.field("link"):
        link = st.selectbox("Cloud link", list(links))
    with st.form("new-pipeline"):
        with errors.field("name"):
            name = st.text_input("Pipeline name", placeholder="nightly-report")
        with errors.field("script"):
            upload = _uploader()
        with errors.field("runner"):
            runner = st.selectbox(
                "Runner", _runners(links.get(link or "", False)), format_func=_RUNNERS.__getitem__
            )
        with errors.field("target"):
            target = st.text_input(
                "Target (ssm runner)", placeholder="i-0123456789abcdef0 or tag:team=data"
            )
        with errors.field("ordering_key"):
            ordering_key = st.selectbox(
                "Ordering key",
                ["pipeline", "instance", "user"],
                accept_new_options=True,
                help="Runs with the same key never overlap and start in order; type any "
                "text to share one order across several pipelines.",
            )
        with errors.field("timeout"):
            timeout = st.number_input(
                "Timeout (seconds)",
                value=3600,
                step=60,
                help=f"At most {MAX_PIPELINE_TIMEOUT_SECONDS} s: SSM runs a command for at "
                "most 48 hours, less the time Orca keeps to upload the log and outputs.",
            )
        with errors.field("retries"):
            retries = st.number_input("Retries", value=0, step=1)
        submitted = st.form_submit_button("Create pipeline", type="primary")
        errors.general()
    if submitted:
        with errors.catch(kinds={"pipeline": "name", "link": "link"}):
            pipeline = add_pipeline(
                orca_settings(),
                current_actor(),
                name.strip(),
                _script(upload),
                link_name=link or "",
                runner=runner,
                target=target.strip() or None,
                ordering_key=(ordering_key or "pipeline").strip(),
                timeout_seconds=int(timeout),
                retries=int(retries),
            )
            version = pipeline.versions[0]
            flash(
                f"Pipeline {pipeline.name!r} created: version {version.version}, sha256 {version.sha256}."
            )
            st.rerun()


def _new_version(pipeline_names: list[str]) -> None:
    if not pipeline_names:
        st.info("No pipelines yet: create one first.")
        return
    errors = FieldErrors("version")
    with st.form("new-version"):
        with errors.field("pipeline"):
            name = st.selectbox("Pipeline", pipeline_names)
        with errors.field("script"):
            upload = _uploader()
        submitted = st.form_submit_button("Upload new version", type="primary")
        errors.general()
    if submitted:
        with errors.catch(kinds={"pipeline": "pipeline"}):
            version = upload_version(orca_settings(), current_actor(), name or "", _script(upload))
            flash(
                f"Pipeline {name!r} is now at version {version.version}, sha256 {version.sha256}."
            )
            st.rerun()


def _pipeline_panel(pipeline: PipelineView) -> None:
    with st.expander(f"{pipeline.name} · v{pipeline.current_version} · link {pipeline.link}"):
        st.markdown(
            f"Runner **{pipeline.runner}**{' on ' + pipeline.target if pipeline.target else ''}"
            f" · ordering key **{pipeline.ordering_key}** · timeout {pipeline.timeout_seconds} s"
            f" · retries {pipeline.retries}"
        )
        st.dataframe(
            [
                {
                    "version": v.version,
                    "sha256": v.sha256,
                    "bytes": v.size_bytes,
                    "uploaded": moment(v.uploaded_at),
                }
                for v in pipeline.versions
            ],
            hide_index=True,
        )


st.title("Script Upload")
show_flash()
user_links = {link.name: link.local for link in list_links(orca_settings(), current_actor())}
pipelines = list_pipelines(orca_settings(), current_actor())

create_tab, version_tab = st.tabs(["New pipeline", "New version"])
with create_tab:
    _new_pipeline(user_links)
with version_tab:
    _new_version([p.name for p in pipelines])

st.subheader("Your pipelines")
if not pipelines:
    st.caption("None yet.")
for pipeline in pipelines:
    _pipeline_panel(pipeline)
