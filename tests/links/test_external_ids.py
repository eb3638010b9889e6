"""ExternalIds are issued by Orca and bound to their user: no one links a role with an id
typed by hand, issued to someone else, or used by another link; rotation issues a new one."""

from __future__ import annotations

import json

import boto3
import pytest
from sqlalchemy import select

from orca_flows.aws.link_defaults import DEFAULT_STACK_NAME
from orca_flows.db.engine import session_scope
from orca_flows.db.models import CloudLink, ExternalId, User
from orca_flows.errors import SandboxError
from orca_flows.local.sandbox import SANDBOX_ACCOUNT_ID, SandboxState, sandbox_status
from orca_flows.services import link_creation
from orca_flows.services.users import add_user
from orca_flows.settings import get_settings
from tests.conftest import PASSWORD
from tests.links.test_link_cli import _block_external_id, _links, issued, orca

pytestmark = pytest.mark.usefixtures("prefect_server")
# User A's role, in A's account: what user B must not be able to link.
ANNS_ROLE = "arn:aws:iam::210987654321:role/OrcaAccess"
BOB = "bob@example.com"
REFUSED = "ExternalIds are issued by Orca: run `orca link kit`"


@pytest.fixture
def bob(ann: User) -> User:
    actor = add_user(get_settings(), BOB, PASSWORD)
    with session_scope(get_settings().effective_database_url) as session:
        return session.get_one(User, actor.user_id)


def _create(name: str, external_id: str, *, user: str | None = None, role: str = ANNS_ROLE):
    who = ["--user", user] if user else []
    return orca("link", "create", name, "--role-arn", role, "--external-id", external_id, *who)


def _ids() -> dict[str, ExternalId]:
    with session_scope(get_settings().effective_database_url) as session:
        return {row.value: row for row in session.scalars(select(ExternalId))}


def _link_rows() -> list[CloudLink]:
    with session_scope(get_settings().effective_database_url) as session:
        return list(session.scalars(select(CloudLink)))


def _bobs_links() -> list[dict]:
    result = orca("link", "list", "--json", "--user", BOB)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_another_user_cannot_link_a_role_with_the_external_id_issued_to_its_owner(
    ann: User, bob: User
) -> None:
    anns_id = issued(ann)

    stolen = _create("theirs", anns_id, user=BOB)
    anns = _create("prod", anns_id)
    stolen_after_use = _create("theirs", anns_id, user=BOB)

    assert stolen.exit_code == 1 and REFUSED in stolen.stderr
    assert anns.exit_code == 0, anns.output  # Ann's id was not used up by Bob's attempt
    assert stolen_after_use.exit_code == 1 and REFUSED in stolen_after_use.stderr
    assert _bobs_links() == []
    assert [row.owner_id for row in _link_rows()] == [ann.id]


def test_an_external_id_of_the_users_own_making_is_refused(bob: User) -> None:
    typed = _create("theirs", "b" * 40, user=BOB)

    assert typed.exit_code == 1 and REFUSED in typed.stderr
    assert _bobs_links() == [] and _link_rows() == []
    assert "b" * 40 not in _ids()  # refusing records nothing


def test_an_external_id_used_by_another_link_of_the_same_user_is_refused(ann: User) -> None:
    external_id = issued(ann)
    first = _create("prod", external_id)

    second = _create("prod2", external_id, role="arn:aws:iam::111111111111:role/OrcaAccess")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 1 and REFUSED in second.stderr
    assert [link["name"] for link in _links()] == ["prod"]
    assert len(_link_rows()) == 1


def test_a_failed_create_leaves_the_external_id_unused_and_no_row(
    ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    external_id = issued(ann)
    real_save = link_creation.save_block

    def save_then_fail(block: object, name: str) -> None:
        if name.startswith("orca-queue-"):
            raise KeyboardInterrupt
        real_save(block, name)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(link_creation, "save_block", save_then_fail)
        failed = _create("prod", external_id)

    assert failed.exit_code != 0
    assert _link_rows() == []
    assert _ids()[external_id].link_id is None  # still the user's to use
    assert _create("prod", external_id).exit_code == 0


def test_removing_a_link_releases_its_external_id_for_the_same_user(ann: User) -> None:
    external_id = issued(ann)
    _create("prod", external_id)

    removed = orca("link", "remove", "prod")

    assert removed.exit_code == 0, removed.output
    assert _ids()[external_id].link_id is None
    assert _create("prod", external_id).exit_code == 0  # the same stack, linked again


def test_each_kit_issues_a_new_external_id_and_the_older_ones_stay_valid(
    ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCA_ACCOUNT_ID", "123456789012")

    first = json.loads(orca("link", "kit", "--json").stdout)["external_id"]
    second = json.loads(orca("link", "kit", "--json").stdout)["external_id"]

    assert first != second
    assert {first, second} <= set(_ids())
    assert all(_ids()[value].owner_id == ann.id for value in (first, second))
    assert _create("old", first).exit_code == 0
    assert _create("new", second).exit_code == 0


def _user_side(sandbox: SandboxState, service: str):
    """A client in the sandbox's "user" account, as its administrator."""
    sts = boto3.client("sts", endpoint_url=sandbox.endpoint_url, region_name="us-east-1")
    admin = sts.assume_role(
        RoleArn=f"arn:aws:iam::{SANDBOX_ACCOUNT_ID}:role/OrcaSandboxAdmin",
        RoleSessionName="test",
    )["Credentials"]
    return boto3.client(
        service,
        endpoint_url=sandbox.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=admin["AccessKeyId"],
        aws_secret_access_key=admin["SecretAccessKey"],
        aws_session_token=admin["SessionToken"],
    )


def _trusted_external_ids(sandbox: SandboxState) -> set[str]:
    iam = _user_side(sandbox, "iam")
    document = iam.get_role(RoleName="OrcaAccess")["Role"]["AssumeRolePolicyDocument"]
    [statement] = document["Statement"]
    values = statement["Condition"]["StringEquals"]["sts:ExternalId"]
    return {values} if isinstance(values, str) else set(values)


def test_sandbox_links_use_external_ids_issued_to_their_users(
    sandbox: SandboxState, ann: User, bob: User
) -> None:
    anns = orca("link", "create", "dev", "--local")
    bobs = orca("link", "create", "dev", "--local", "--user", BOB)

    assert anns.exit_code == 0 and bobs.exit_code == 0, anns.output + bobs.output
    [ann_link] = _links()
    [bob_link] = _bobs_links()
    ann_id = _block_external_id(ann_link["block_document"])
    bob_id = _block_external_id(bob_link["block_document"])
    ids = _ids()
    assert ann_id != bob_id
    assert ids[ann_id].owner_id == ann.id and ids[ann_id].link_id is not None
    assert ids[bob_id].owner_id == bob.id and ids[bob_id].link_id is not None
    assert {ann_id, bob_id} <= _trusted_external_ids(sandbox)
    assert orca("link", "check", "dev").exit_code == 0


def test_update_rotates_a_sandbox_link_to_a_new_issued_external_id(
    sandbox: SandboxState, ann: User
) -> None:
    orca("link", "create", "dev", "--local")
    [link] = _links()
    old = _block_external_id(link["block_document"])

    rotated = orca("link", "update", "dev")

    assert rotated.exit_code == 0, rotated.output
    assert "sandbox's role now trusts the new ExternalId" in rotated.stdout
    new = _block_external_id(link["block_document"])
    ids = _ids()
    assert new != old and ids[new].owner_id == ann.id
    assert ids[new].link_id is not None and ids[old].link_id is None  # the old is released
    trusted = _trusted_external_ids(sandbox)
    assert new in trusted and old not in trusted
    checked = orca("link", "check", "dev")
    assert checked.exit_code == 0, checked.output  # the link works with the new one


def test_a_re_created_sandbox_role_trusts_the_existing_links_again(
    sandbox: SandboxState, ann: User
) -> None:
    orca("link", "create", "dev", "--local")
    [link] = _links()
    external_id = _block_external_id(link["block_document"])
    # What an emulator that lost its state looks like: no stack, no bucket, no role.
    _user_side(sandbox, "cloudformation").delete_stack(StackName=DEFAULT_STACK_NAME)
    _user_side(sandbox, "s3").delete_bucket(Bucket=sandbox.bucket)  # the stack retains it

    status = sandbox_status(get_settings())  # what `orca local up` / `status` run

    assert sandbox.role_arn in status.provisioned
    assert external_id in _trusted_external_ids(sandbox)


def test_a_refused_or_failed_sandbox_link_issues_nothing(
    sandbox: SandboxState, ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    orca("link", "create", "dev", "--local")
    before = set(_ids())

    duplicate = orca("link", "create", "dev", "--local")

    def emulator_refuses(*_: object) -> None:
        raise SandboxError("the sandbox refused; run `orca local up` and try again.")

    monkeypatch.setattr(link_creation, "trust_sandbox_external_ids", emulator_refuses)
    failed = orca("link", "create", "dev2", "--local")

    assert duplicate.exit_code == 1 and "link 'dev' already exists" in duplicate.stderr
    assert failed.exit_code == 1 and "orca local up" in failed.stderr
    assert set(_ids()) == before
    assert [link["name"] for link in _links()] == ["dev"] and len(_link_rows()) == 1
