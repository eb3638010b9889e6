"""Orca's account and the user's account are different accounts, on the emulator too."""

from __future__ import annotations

import pytest

from orca_flows.db.models import User
from orca_flows.domain.actor import Actor
from orca_flows.local.sandbox import SANDBOX_ACCOUNT_ID, SandboxState, orca_side_factory
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.link_creation import create_local_link
from orca_flows.services.links import access_link
from orca_flows.settings import get_settings


@pytest.fixture
def access(prefect_server, sandbox: SandboxState, ann: User) -> LinkAccess:
    settings, actor = get_settings(), Actor(ann.id, ann.email)
    create_local_link(settings, actor, "dev")
    return access_link(settings, actor, "dev")


def test_the_link_acts_in_the_users_account_through_the_role(access: LinkAccess) -> None:
    identity = access.client("sts").get_caller_identity()

    assert identity["Account"] == SANDBOX_ACCOUNT_ID
    assert ":assumed-role/OrcaAccess/" in identity["Arn"]


def test_the_users_bucket_and_queue_live_in_the_users_account_only(
    access: LinkAccess, sandbox: SandboxState, ann: User
) -> None:
    access.user_bucket(ann.id).put("hello.txt", b"mine")
    access.queue().send("run", group_id="g", dedup_id="r1")
    orca = orca_side_factory(get_settings(), sandbox.endpoint_url)

    orca_buckets = [b["Name"] for b in orca.client("s3").list_buckets()["Buckets"]]
    user_buckets = [b["Name"] for b in access.client("s3").list_buckets()["Buckets"]]
    orca_queues = orca.client("sqs").list_queues().get("QueueUrls", [])

    assert orca.client("sts").get_caller_identity()["Account"] != SANDBOX_ACCOUNT_ID
    assert user_buckets == ["orca-sandbox"]
    assert "orca-sandbox" not in orca_buckets
    assert orca_queues == []
    assert access.user_bucket(ann.id).get("hello.txt") == b"mine"
