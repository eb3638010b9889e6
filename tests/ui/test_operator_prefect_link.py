"""The "open in Prefect" link is for operators only: Prefect holds every user's credentials
blocks and logs (issue 10, point 3)."""

from __future__ import annotations

from uuid import uuid4

import pytest
from streamlit.testing.v1 import AppTest

from orca_flows.db.engine import session_scope
from orca_flows.db.models import Run, User
from orca_flows.domain.actor import Actor
from orca_flows.local.sandbox import SandboxState
from orca_flows.services.runs import run_details, submit_run
from orca_flows.settings import get_settings
from tests.ui.conftest import ROUTER, add_script, link_the_sandbox, open_page
from ui.session import USER_KEY, SignedIn

pytestmark = pytest.mark.usefixtures("prefect_server")
PREFECT_LINK = "Open the flow run in Prefect"


def _link_labels(app: AppTest) -> list[str]:
    return [button.label for button in app.get("link_button")]


def test_only_an_operator_is_shown_the_flow_runs_prefect_page(
    sandbox: SandboxState, ann: User
) -> None:
    settings = get_settings()
    link_the_sandbox(ann)
    add_script(ann, "nightly", b"#!/bin/bash\necho hello\n")
    run_id = submit_run(
        settings, Actor(ann.id, ann.email), "nightly", requested_by=f"user:{ann.id}"
    ).run_id
    flow_run_id = str(uuid4())
    with session_scope(settings.effective_database_url) as session:
        session.get_one(Run, run_id).flow_run_id = flow_run_id

    tenant = run_details(settings, Actor(ann.id, ann.email), run_id)
    operator = run_details(settings, Actor(ann.id, ann.email, is_operator=True), run_id)

    assert tenant.flow_run_url is None
    assert operator.flow_run_url is not None
    assert operator.flow_run_url.endswith(f"/runs/flow-run/{flow_run_id}")

    as_tenant = open_page(ann, "task_overview", run=run_id)
    as_operator = AppTest.from_file(str(ROUTER), default_timeout=90)
    as_operator.session_state[USER_KEY] = SignedIn(ann.id, ann.email, is_operator=True)
    as_operator.run()
    as_operator.switch_page("app_pages/task_overview.py")
    as_operator.query_params.update(run=run_id)
    as_operator.run()

    assert PREFECT_LINK not in _link_labels(as_tenant)
    assert PREFECT_LINK in _link_labels(as_operator)
