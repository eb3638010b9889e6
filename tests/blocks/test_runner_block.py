"""The EC2 runner block: bad values are refused before they can be saved; each link gets one,
saved with it and removed with it; the worker's link access reads it, so an edit (in the
Prefect UI) is what the next runs are sent with; a link made before the block existed, or a
worker with ORCA_SSM_DELIVERY_TIMEOUT_SECONDS set, uses the worker setting."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from orca_blocks import OrcaEc2Runner, OrcaLinkedCloudCredentials
from orca_flows.db.models import CloudLink, Pipeline, User
from orca_flows.db.repositories import links as links_repo
from orca_flows.domain.actor import Actor
from orca_flows.prefect_adapter.blocks import delete_block
from orca_flows.prefect_adapter.link_access import (
    LinkAccess,
    new_runner_block,
    runner_block_name,
)
from orca_flows.runners import SsmRunner
from orca_flows.runners.factory import runner_for
from orca_flows.services import link_creation, links
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings, get_settings
from tests.links.test_link_cli import ROLE, issued

# An SSM pipeline as the factory reads it (its link is not needed for SSM).
_PIPELINE = Pipeline(name="etl", owner_id=1, runner="ssm", target="i-0123456789abcdef0")


def _timeout_sent(access: LinkAccess, settings: OrcaSettings) -> int:
    """The delivery timeout the worker's runner sends the link's next SSM command with."""
    runner = runner_for(_PIPELINE, access, settings)
    assert isinstance(runner, SsmRunner)
    return runner.delivery_timeout_seconds


def _access(runner: OrcaEc2Runner | None) -> LinkAccess:
    """A link's access as the worker holds it (no call is made: clients are lazy)."""
    credentials = OrcaLinkedCloudCredentials(
        role_arn="arn:aws:iam::123456789012:role/OrcaAccess",
        external_id="orca-7f3a9c1e",
        endpoint_url="http://127.0.0.1:9",
    )
    return LinkAccess(1, "bucket", "", credentials, credentials.client_factory(), runner)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (29, "greater than or equal to 30"),
        (2_592_001, "less than or equal to 2592000"),
        ("ten minutes", "valid integer"),
    ],
)
def test_a_delivery_timeout_outside_aws_limits_is_refused(value: Any, says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        OrcaEc2Runner(delivery_timeout_seconds=value)

    assert "delivery_timeout_seconds" in str(raised.value)
    assert says in str(raised.value)


def test_an_edit_is_refused_before_it_can_be_saved() -> None:
    runner = OrcaEc2Runner()

    with pytest.raises(ValidationError, match="greater than or equal to 30"):
        runner.delivery_timeout_seconds = 5

    assert runner.delivery_timeout_seconds == 600


def test_the_prefect_ui_form_shows_the_limits_and_the_default() -> None:
    field = OrcaEc2Runner.model_json_schema()["properties"]["delivery_timeout_seconds"]

    assert (field["minimum"], field["maximum"], field["default"]) == (30, 2_592_000, 600)
    assert field["title"] == "SSM delivery timeout (seconds)"


@pytest.mark.parametrize("value", [30, 2_592_000])
def test_the_block_takes_what_the_worker_setting_takes(value: int) -> None:
    assert OrcaEc2Runner(delivery_timeout_seconds=value).delivery_timeout_seconds == value
    assert OrcaSettings(ssm_delivery_timeout_seconds=value).ssm_delivery_timeout_seconds == value
    for outside in (value - 1, value + 1):
        if not 30 <= outside <= 2_592_000:
            with pytest.raises(ValidationError):
                OrcaSettings(ssm_delivery_timeout_seconds=outside)


def test_a_new_link_s_block_starts_from_the_worker_setting() -> None:
    settings = OrcaSettings(ssm_delivery_timeout_seconds=120)

    assert new_runner_block(settings).delivery_timeout_seconds == 120


def test_the_runner_is_sent_with_the_block_s_value_not_the_setting_s() -> None:
    access = _access(OrcaEc2Runner(delivery_timeout_seconds=1800))

    assert _timeout_sent(access, OrcaSettings()) == 1800


def test_a_link_without_a_runner_block_uses_the_worker_setting() -> None:
    assert _timeout_sent(_access(None), OrcaSettings()) == 600
    assert _timeout_sent(_access(None), OrcaSettings(ssm_delivery_timeout_seconds=90)) == 90


def test_a_worker_setting_set_explicitly_replaces_every_block_s_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORCA_SSM_DELIVERY_TIMEOUT_SECONDS", "30")
    access = _access(OrcaEc2Runner(delivery_timeout_seconds=1800))

    assert _timeout_sent(access, OrcaSettings()) == 30


def _link(owner: User, name: str) -> CloudLink:
    with unit_of_work(get_settings()) as session:
        link = links_repo.get_link_by_name(session, owner.id, name)
    assert link is not None
    return link


def _runner_block(name: str) -> OrcaEc2Runner | None:
    try:
        return OrcaEc2Runner.load(name)
    except ValueError:  # Prefect's "Unable to find block document named ..."
        return None


@pytest.mark.usefixtures("prefect_server")
def test_an_edit_in_prefect_is_used_from_the_worker_s_next_links_refresh(ann: User) -> None:
    settings, actor = get_settings(), Actor(ann.id, ann.email)
    view = link_creation.create_link(
        settings, actor, "prod", role_arn=ROLE, external_id=issued(ann)
    )
    name = runner_block_name(view.block_document)
    assert name.startswith("orca-runner-")
    block = _runner_block(name)
    assert block is not None and block.delivery_timeout_seconds == 600
    link = _link(ann, "prod")
    before = LinkAccess.reload(link)  # what a worker's links refresh does
    assert _timeout_sent(before, settings) == 600

    # As the Prefect UI saves an edit: the document's contents change, not its name.
    block.delivery_timeout_seconds = 1800
    block.save(name, overwrite=True)
    after = LinkAccess.reload(link)

    assert after.marker != before.marker, "the worker would keep the old access"
    assert _timeout_sent(after, settings) == 1800
    assert links.remove_link(settings, actor, "prod").leftover_blocks == ()
    assert _runner_block(name) is None


@pytest.mark.usefixtures("prefect_server")
def test_a_link_made_before_the_runner_block_uses_the_setting_and_is_removed_cleanly(
    ann: User,
) -> None:
    settings, actor = get_settings(), Actor(ann.id, ann.email)
    view = link_creation.create_link(settings, actor, "old", role_arn=ROLE, external_id=issued(ann))
    delete_block(OrcaEc2Runner, runner_block_name(view.block_document))

    access = LinkAccess.reload(_link(ann, "old"))

    assert access.runner is None
    assert _timeout_sent(access, settings) == settings.ssm_delivery_timeout_seconds == 600
    assert links.remove_link(settings, actor, "old").leftover_blocks == ()
