"""Creating, checking and removing a link without a network call inside a transaction, and
what an interrupted or failed attempt leaves behind (nothing, or what a retry cleans up)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from orca_blocks import OrcaLinkedCloudCredentials
from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import CloudLink, User
from orca_flows.db.repositories import links as links_repo
from orca_flows.domain.actor import Actor
from orca_flows.errors import PrefectUnavailableError
from orca_flows.local.sandbox import SandboxState
from orca_flows.prefect_adapter.blocks import save_block
from orca_flows.prefect_adapter.link_access import queue_block_name
from orca_flows.services import link_check, link_creation, links
from orca_flows.settings import get_settings
from tests.links.test_link_cli import (
    EXTERNAL_ID,
    ROLE,
    _credentials_block_exists,
    _credentials_blocks,
    _links,
    issued,
    orca,
)
from tests.support.transaction_guard import recording

pytestmark = pytest.mark.usefixtures("prefect_server")


def _rows() -> list[CloudLink]:
    """Every cloud_links row, pending ones too."""
    with session_scope(get_settings().effective_database_url) as session:
        return list(session.scalars(select(CloudLink)))


def _interrupted_creation(owner: User, name: str, *, age: timedelta) -> str:
    """What a `link create` killed after saving its credentials block leaves: a pending row
    ``age`` old and that block. Returns the block's name."""
    block = f"orca-link-crashed{owner.id}{int(age.total_seconds())}"
    with session_scope(get_settings().effective_database_url) as session:
        links_repo.create_link(
            session,
            owner_id=owner.id,
            name=name,
            region="us-east-1",
            role_arn=ROLE,
            block_document_name=block,
            pending_since=utcnow() - age,
        )
    credentials = OrcaLinkedCloudCredentials(
        role_arn=ROLE, external_id=SecretStr(EXTERNAL_ID), region_name="us-east-1"
    )
    save_block(credentials, block)
    return block


def test_create_check_update_remove_hold_no_transaction_across_a_network_call(
    sandbox: SandboxState, ann: User
) -> None:
    with recording() as violations:
        results = [
            orca("link", "create", "dev", "--local"),
            orca("link", "check", "dev"),
            orca("link", "list", "--json"),
            orca("link", "update", "dev"),
            orca("link", "remove", "dev"),
        ]

    assert [r.exit_code for r in results] == [0, 0, 0, 0, 0], [r.output for r in results]
    assert [v.describe() for v in violations] == []


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(PrefectUnavailableError("Prefect went away"), id="prefect-fails-midway"),
        pytest.param(KeyboardInterrupt(), id="ctrl-c-midway"),
    ],
)
def test_a_failure_after_the_first_block_leaves_no_row_and_no_block(
    ann: User, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    blocks_before = _credentials_blocks()
    real_save = link_creation.save_block

    def save_then_fail(block: object, name: str) -> None:
        if name.startswith("orca-queue-"):  # the credentials block is saved by now
            raise failure
        real_save(block, name)  # type: ignore[arg-type]

    external_id = issued(ann)
    with monkeypatch.context() as patch:
        patch.setattr(link_creation, "save_block", save_then_fail)
        result = orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", external_id)

    assert result.exit_code != 0
    assert _rows() == []
    assert _credentials_blocks() == blocks_before
    # The failed attempt left the ExternalId unused: the retry may claim it.
    retried = orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", external_id)
    assert retried.exit_code == 0, retried.output  # nothing stands in the way of a retry


def test_an_interrupted_creation_is_invisible_and_replaced_by_a_retry_after_the_timeout(
    ann: User,
) -> None:
    stale = _interrupted_creation(
        ann, "prod", age=link_creation.PENDING_TIMEOUT + timedelta(minutes=1)
    )

    listed = _links()
    checked = orca("link", "check", "prod")
    created = orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", issued(ann))

    assert listed == []  # a half-made link is never offered
    assert checked.exit_code == 1 and "link 'prod' does not exist" in checked.stderr
    assert created.exit_code == 0, created.output
    [link] = _links()
    assert link["block_document"] != stale
    assert _credentials_block_exists(link["block_document"])
    assert not _credentials_block_exists(stale)  # the crashed attempt's block is gone
    assert [row.pending_since for row in _rows()] == [None]


def test_a_recent_reservation_is_refused_as_being_created(ann: User) -> None:
    block = _interrupted_creation(ann, "prod", age=timedelta(seconds=5))

    result = orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", issued(ann))

    assert result.exit_code == 1
    assert "link 'prod' already exists. It is being created right now" in result.stderr
    [row] = _rows()
    assert row.block_document_name == block and row.pending_since is not None
    assert _credentials_block_exists(block)


def test_removing_with_prefect_down_removes_the_link_and_names_the_orphan_blocks(
    ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", issued(ann))
    [link] = _links()

    def prefect_down(*_: object) -> None:
        raise PrefectUnavailableError("could not delete block: Prefect is down")

    monkeypatch.setattr(links, "delete_block", prefect_down)
    result = orca("link", "remove", "prod")

    assert result.exit_code == 0, result.output
    assert _links() == [] and _rows() == []
    block = link["block_document"]
    assert block in result.stderr and queue_block_name(block) in result.stderr
    assert "delete them in the Prefect UI" in result.stderr
    assert _credentials_block_exists(block)  # only an orphan nothing loads is left


def test_a_check_of_a_link_re_created_meanwhile_stores_nothing_on_the_new_one(
    sandbox: SandboxState, ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, actor = get_settings(), Actor(ann.id, ann.email)
    link_creation.create_local_link(settings, actor, "dev")
    real_steps = link_check._steps

    def re_create_then_check(*args: object) -> object:
        links.remove_link(settings, actor, "dev")
        link_creation.create_local_link(settings, actor, "dev")
        return real_steps(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(link_check, "_steps", re_create_then_check)
    result = link_check.check_link(settings, actor, "dev")

    assert result.passed
    assert links.get_link(settings, actor, "dev").last_check_status is None
