"""Script Upload offers the local runner only where it is allowed (issue 10, point 1), and
refuses a timeout SSM could not honour, with the limit (point 13)."""

from __future__ import annotations

import pytest

from orca_flows.db.engine import session_scope
from orca_flows.db.models import User
from orca_flows.db.repositories import links as links_repo
from orca_flows.settings import get_settings
from tests.ui.conftest import field_errors, offline_pipeline, open_page, widget
from tests.ui.test_script_upload import SCRIPT, new_pipeline, pipeline_names

LOCAL = "local: on Orca's own host"
SSM = "ssm: on your EC2 instances"


def _real_account_link(user: User, name: str = "prod") -> None:
    with session_scope(get_settings().effective_database_url) as session:
        links_repo.create_link(
            session, owner_id=user.id, name=name, region="us-east-1", block_document_name="b"
        )


def _runners_offered(user: User) -> list[str]:
    app = open_page(user, "script_upload")
    return list(widget(app, "selectbox", "Runner").options)


def test_a_real_account_link_is_not_offered_the_local_runner(ann: User) -> None:
    _real_account_link(ann)

    assert _runners_offered(ann) == [SSM]


def test_a_sandbox_link_is_offered_both_ssm_first(ann: User) -> None:
    offline_pipeline(ann, "existing")  # its link is a sandbox link

    # ssm is the default on the sandbox too: its runs go to the emulated fleet.
    assert _runners_offered(ann) == [SSM, LOCAL]


def test_ssm_without_a_target_on_a_real_account_link_is_refused_under_the_field(
    ann: User,
) -> None:
    _real_account_link(ann)  # a sandbox link's ssm pipelines default to its fleet's tag

    app = new_pipeline(ann, "remote", ("job.sh", SCRIPT))

    [shown] = field_errors(app, "pipeline", "target")
    assert "the ssm runner needs --target" in shown
    assert pipeline_names(ann) == []


def test_the_runners_follow_the_link_chosen(ann: User) -> None:
    offline_pipeline(ann, "existing", link="offline")
    _real_account_link(ann, "prod")
    app = open_page(ann, "script_upload")

    widget(app, "selectbox", "Cloud link").set_value("prod")
    app.run()

    assert list(widget(app, "selectbox", "Runner").options) == [SSM]


def test_the_operator_setting_offers_it_on_any_link(
    ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCA_ALLOW_LOCAL_RUNNER", "true")
    _real_account_link(ann)

    assert _runners_offered(ann) == [SSM, LOCAL]


def test_a_timeout_beyond_ssms_limit_is_refused_under_the_field_with_the_limit(
    ann: User,
) -> None:
    offline_pipeline(ann, "existing")

    app = new_pipeline(ann, "long", ("job.sh", SCRIPT), **{"Timeout (seconds)": 172_800})

    [shown] = field_errors(app, "pipeline", "timeout")
    assert "timeout must be at most 171910 seconds" in shown and "48 hours" in shown
    assert not app.success
    assert pipeline_names(ann) == ["existing"]
