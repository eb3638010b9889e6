"""Cloud Setup: the one-click sandbox link, the kit wizard, checks, refusals under fields."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from orca_flows.db.engine import session_scope
from orca_flows.db.models import User
from orca_flows.db.repositories.links import get_link_by_name
from orca_flows.db.repositories.pipelines import create_pipeline
from orca_flows.domain.actor import Actor
from orca_flows.local.sandbox import SandboxState
from orca_flows.services.links import get_link
from orca_flows.settings import get_settings
from tests.ui.conftest import button, field_errors, open_page, texts, widget

pytestmark = pytest.mark.usefixtures("prefect_server")
USER_ACCOUNT = "210987654321"
ROLE = f"arn:aws:iam::{USER_ACCOUNT}:role/OrcaAccess"


def link_sandbox(user: User, name: str = "sandbox") -> AppTest:
    app = open_page(user, "cloud_setup")
    widget(app, "text_input", "Link name").set_value(name)
    button(app, "Link the local sandbox").click()
    return app.run()


def create_link(app: AppTest, name: str, role_arn: str, external_id: str = "") -> AppTest:
    form = app.get("form")[-1]  # the "Link it" form comes last
    form.text_input[0].input(name)
    form.text_input[1].input(role_arn)
    form.text_input[3].input(external_id)
    button(app, "Create the link").click()
    return app.run()


def test_without_the_sandbox_the_page_says_how_to_start_it(ann: User) -> None:
    app = open_page(ann, "cloud_setup")

    assert "start it with `orca local up`" in texts(app)
    assert "Link the local sandbox" not in [b.label for b in app.button]
    assert "No links yet" in texts(app)


def test_one_click_links_the_sandbox_and_its_check_passes(sandbox: SandboxState, ann: User) -> None:
    app = link_sandbox(ann)

    assert "Linked 'sandbox' to the local sandbox" in app.success[0].value
    assert any(f"sandbox · {sandbox.account_id}" in e.label for e in app.expander)
    button(app, "Check").click()
    shown = texts(app.run())
    assert "Link check passed." in shown
    for step in ("assume role", "account", "bucket", "queue", "ssm targets"):
        assert f"**{step}** (passed)" in shown
    assert "2 instance(s) online" in shown  # the sandbox's fleet, verified for real


def test_a_duplicate_link_name_is_refused_under_the_name(sandbox: SandboxState, ann: User) -> None:
    link_sandbox(ann)

    app = link_sandbox(ann)

    assert field_errors(app, "sandbox", "name") == [
        "link 'sandbox' already exists. Choose another name or `orca link remove` it."
    ]


def test_the_kit_shows_the_external_id_once_and_links_the_role(
    ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCA_ACCOUNT_ID", "123456789012")
    app = open_page(ann, "cloud_setup")
    widget(app, "text_input", "Your AWS account id (optional, 12 digits)").input(USER_ACCOUNT)
    button(app, "Generate the kit").click()
    kit = app.run()

    external_id = kit.code[0].value
    assert len(external_id) >= 32
    assert [b.label for b in kit.get("download_button")] == [
        "Download the template (orca-link.json)"
    ]
    assert "quickcreate" in kit.get("link_button")[0].proto.url
    assert "aws cloudformation" in kit.code[1].value
    assert widget(kit, "text_input", "Role ARN").value == ROLE  # predicted from the account

    created = create_link(kit, "prod", ROLE)

    assert "Linked 'prod'" in created.success[0].value
    assert external_id not in texts(created)  # shown once, never again
    assert get_link(get_settings(), Actor(ann.id, ann.email), "prod").role_arn == ROLE


@pytest.mark.parametrize(
    ("name", "role_arn", "external_id", "field", "message"),
    [
        pytest.param(
            "Prod Account",
            ROLE,
            "e" * 40,
            "name",
            "link name 'Prod Account' must be",
            id="bad-name",
        ),
        pytest.param(
            "prod",
            "arn:aws:iam:123:role/x",
            "e" * 40,
            "role_arn",
            "is not an IAM role ARN",
            id="bad-arn",
        ),
        pytest.param(
            "prod", ROLE, "", "external_id", "generate a kit in step 1 first", id="no-kit"
        ),
        pytest.param(
            "prod",
            ROLE,
            "t" * 40,  # typed by hand: Orca never issued it
            "external_id",
            "ExternalIds are issued by Orca: generate a kit in step 1",
            id="typed-external-id",
        ),
    ],
)
def test_a_refused_link_says_why_under_the_field(
    ann: User, name: str, role_arn: str, external_id: str, field: str, message: str
) -> None:
    app = create_link(open_page(ann, "cloud_setup"), name, role_arn, external_id)

    [shown] = field_errors(app, "create", field)
    assert message in shown
    if field == "external_id":
        assert "orca link" not in shown  # the page names its own step 1, not the CLI
    assert "No links yet" in texts(app)


def test_a_bad_account_id_is_refused_under_its_field(
    ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCA_ACCOUNT_ID", "123456789012")
    app = open_page(ann, "cloud_setup")
    widget(app, "text_input", "Your AWS account id (optional, 12 digits)").input("12345")
    button(app, "Generate the kit").click()
    app.run()

    assert field_errors(app, "kit", "account") == [
        "account '12345' must be the 12-digit AWS account id."
    ]
    assert not app.code  # no ExternalId shown


def test_removing_a_link_in_use_is_refused(sandbox: SandboxState, ann: User) -> None:
    link_sandbox(ann)
    with session_scope(get_settings().effective_database_url) as session:
        link = get_link_by_name(session, ann.id, "sandbox")
        create_pipeline(session, owner_id=ann.id, name="etl", link_id=link.id)
    app = open_page(ann, "cloud_setup")
    button(app, "Remove link").click()
    app.run()

    assert "used by pipeline(s) etl" in app.error[0].value
    assert any(e.label.startswith("sandbox ·") for e in app.expander)
