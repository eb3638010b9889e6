"""Script Upload: a new pipeline or version, its number and sha256, refusals under fields."""

from __future__ import annotations

import hashlib

import pytest
from streamlit.testing.v1 import AppTest

from orca_flows.db.models import User
from orca_flows.domain.actor import Actor
from orca_flows.local.sandbox import SandboxState
from orca_flows.services.pipelines import list_pipelines
from orca_flows.settings import get_settings
from tests.ui.conftest import (
    add_script,
    button,
    field_errors,
    link_the_sandbox,
    offline_pipeline,
    open_page,
    texts,
)

pytestmark = pytest.mark.usefixtures("prefect_server")
SCRIPT = b"#!/bin/bash\necho hello from orca\n"


def pipeline_names(user: User) -> list[str]:
    return [p.name for p in list_pipelines(get_settings(), Actor(user.id, user.email))]


def new_pipeline(
    user: User, name: str, upload: tuple[str, bytes] | None, **fields: object
) -> AppTest:
    app = open_page(user, "script_upload")
    form = app.get("form")[0]
    form.text_input[0].input(name)
    if upload is not None:
        form.get("file_uploader")[0].upload(upload[0], upload[1])
    for label, value in fields.items():
        next(
            w for kind in ("selectbox", "number_input") for w in form.get(kind) if w.label == label
        ).set_value(value)
    button(app, "Create pipeline").click()
    return app.run()


def test_a_new_pipeline_shows_its_version_and_sha256(sandbox: SandboxState, ann: User) -> None:
    link_the_sandbox(ann)

    app = new_pipeline(ann, "nightly", ("job.sh", SCRIPT))

    assert app.success[0].value == (
        f"Pipeline 'nightly' created: version 1, sha256 {hashlib.sha256(SCRIPT).hexdigest()}."
    )
    assert pipeline_names(ann) == ["nightly"]
    assert any(e.label.startswith("nightly · v1 · link sandbox") for e in app.expander)


def test_a_new_version_shows_its_number_and_sha256(sandbox: SandboxState, ann: User) -> None:
    link_the_sandbox(ann)
    add_script(ann, "nightly", SCRIPT)
    version_two = SCRIPT + b"echo again\n"
    app = open_page(ann, "script_upload")
    form = app.get("form")[1]
    form.get("file_uploader")[0].upload("job.py", version_two)
    button(app, "Upload new version").click()
    app.run()

    assert app.success[0].value == (
        f"Pipeline 'nightly' is now at version 2, sha256 {hashlib.sha256(version_two).hexdigest()}."
    )


@pytest.mark.parametrize(
    ("name", "upload", "fields", "field", "message"),
    [
        pytest.param(
            "tool",
            ("tool.exe", b"MZ\x90\x00"),
            {},
            "script",
            "'tool.exe' must be a .sh (bash) or .py (python3) file.",
            id="exe",
        ),
        pytest.param("empty", ("job.sh", b""), {}, "script", "is empty", id="empty-script"),
        pytest.param("nofile", None, {}, "script", "choose the .sh or .py file", id="no-file"),
        pytest.param(
            "Bad Name",
            ("job.sh", SCRIPT),
            {},
            "name",
            "pipeline name 'Bad Name' must be",
            id="bad-name",
        ),
        pytest.param(
            "slow",
            ("job.sh", SCRIPT),
            {"Timeout (seconds)": 0},
            "timeout",
            "timeout must be a positive number",
            id="zero-timeout",
        ),
        pytest.param(
            "retry",
            ("job.sh", SCRIPT),
            {"Retries": 99},
            "retries",
            "retries must be between 0 and 10",
            id="too-many-retries",
        ),
    ],
)
def test_a_refused_upload_says_why_under_the_field(
    ann: User,
    name: str,
    upload: tuple[str, bytes] | None,
    fields: dict[str, object],
    field: str,
    message: str,
) -> None:
    offline_pipeline(ann, "existing")  # a link to upload to; refusals come before AWS

    app = new_pipeline(ann, name, upload, **fields)

    [shown] = field_errors(app, "pipeline", field)
    assert message in shown
    assert not app.success
    assert pipeline_names(ann) == ["existing"]


def test_a_duplicate_pipeline_name_is_refused_under_the_name(ann: User) -> None:
    offline_pipeline(ann, "nightly")

    app = new_pipeline(ann, "nightly", ("job.sh", SCRIPT))

    assert "pipeline 'nightly' already exists" in field_errors(app, "pipeline", "name")[0]


def test_without_a_link_the_page_sends_the_user_to_cloud_setup(ann: User) -> None:
    app = open_page(ann, "script_upload")

    assert "Link a cloud account first" in texts(app)
    assert [link.proto.label for link in app.get("page_link")] == ["Go to Cloud Setup"]
