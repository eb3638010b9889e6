"""A user with a sandbox link, and ways to see everything Orca stored for them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner, Result

from orca_flows.cli.main import app
from orca_flows.db.models import User
from orca_flows.domain.actor import Actor
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.link_creation import create_local_link
from orca_flows.services.links import access_link
from orca_flows.settings import get_settings


def orca(*args: str, input: str | None = None) -> Result:
    """The CLI in-process (typer's runner)."""
    return CliRunner().invoke(app, list(args), input=input)


def listed(*args: str) -> list[dict]:
    """A `--json` listing, parsed."""
    result = orca(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def access(prefect_server, sandbox, ann: User) -> LinkAccess:
    """A sandbox link named `dev` for ann, and its clients."""
    settings, actor = get_settings(), Actor(ann.id, ann.email)
    create_local_link(settings, actor, "dev")
    return access_link(settings, actor, "dev")


def stored_objects(access: LinkAccess, user: User) -> list[str]:
    """Every object under the user's prefix in the link's bucket."""
    return access.user_bucket(user.id).list()


def queued_messages(access: LinkAccess) -> int:
    """Messages waiting in the link's queue (visible or in flight)."""
    attributes = access.client("sqs").get_queue_attributes(
        QueueUrl=access.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())
