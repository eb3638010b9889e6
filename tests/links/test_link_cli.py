"""`orca link kit | create | check | list | remove` through the CLI, on the sandbox."""

from __future__ import annotations

import json

import boto3
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner, Result

from orca_blocks import OrcaLinkedCloudCredentials, OrcaRunQueue
from orca_flows.cli.main import app
from orca_flows.db.engine import session_scope
from orca_flows.db.models import User
from orca_flows.db.repositories.pipelines import create_pipeline
from orca_flows.domain.actor import Actor
from orca_flows.local.sandbox import SANDBOX_ACCOUNT_ID, SandboxState
from orca_flows.prefect_adapter.link_access import queue_block_name
from orca_flows.services.link_kits import issue_external_id
from orca_flows.settings import get_settings

pytestmark = pytest.mark.usefixtures("prefect_server")
ROLE = "arn:aws:iam::210987654321:role/OrcaAccess"
EXTERNAL_ID = "e" * 40  # made by hand: fine where the refusal comes first, refused otherwise


def orca(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def issued(user: User) -> str:
    """An ExternalId Orca issued to ``user``, unused (what `orca link kit` records)."""
    return issue_external_id(get_settings(), Actor(user.id, user.email))


def _block_external_id(block: str) -> str:
    return OrcaLinkedCloudCredentials.load(block).external_id.get_secret_value()


def _links() -> list[dict]:
    result = orca("link", "list", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _block_names(block_type: str) -> set[str]:
    with get_client(sync_client=True) as client:
        documents = client.read_block_documents_by_type(block_type)
    return {document.name for document in documents}


def _credentials_blocks() -> set[str]:
    return _block_names("orca-linked-cloud-credentials")


def _credentials_block_exists(name: str) -> bool:
    try:
        OrcaLinkedCloudCredentials.load(name)
    except ValueError:
        return False
    return True


def test_create_check_list_remove_on_the_sandbox(sandbox: SandboxState, ann: User) -> None:
    created = orca("link", "create", "dev", "--local")
    checked = orca("link", "check", "dev")
    [listed] = _links()

    assert created.exit_code == 0, created.output
    assert checked.exit_code == 0, checked.output
    for step in ("assume role", "account", "bucket", "queue", "ssm targets"):
        assert f"pass  {step}" in checked.stdout
    assert "2 instance(s) online" in checked.stdout  # the sandbox's fleet, verified for real
    assert listed["account_id"] == SANDBOX_ACCOUNT_ID and listed["local"] is True
    assert listed["last_check_status"] == "passed" and listed["last_check_at"]
    assert EXTERNAL_ID not in json.dumps(listed)
    block = listed["block_document"]
    assert _credentials_block_exists(block)

    removed = orca("link", "remove", "dev")

    assert removed.exit_code == 0 and "delete the CloudFormation stack" in removed.stdout
    assert _links() == []
    assert not _credentials_block_exists(block)


def test_a_failing_check_names_the_step_and_its_fix(sandbox: SandboxState, ann: User) -> None:
    orca("link", "create", "dev", "--local")
    user_side = _user_side_s3(sandbox)
    user_side.delete_bucket(Bucket=sandbox.bucket)  # the bucket is gone from the account

    result = orca("link", "check", "dev")

    assert result.exit_code == 1
    assert "FAIL  bucket" in result.stdout
    assert (
        f"The bucket {sandbox.bucket} must exist in account {SANDBOX_ACCOUNT_ID}" in result.stdout
    )
    assert "pass  queue" in result.stdout  # the other steps still ran
    assert _links()[0]["last_check_status"] == "failed"


def _user_side_s3(sandbox: SandboxState):
    sts = boto3.client("sts", endpoint_url=sandbox.endpoint_url, region_name="us-east-1")
    creds = sts.assume_role(RoleArn=sandbox.role_arn, RoleSessionName="admin")["Credentials"]
    return boto3.client(
        "s3",
        endpoint_url=sandbox.endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def test_kit_then_create_uses_the_issued_external_id(ann: User, monkeypatch) -> None:
    monkeypatch.setenv("ORCA_ACCOUNT_ID", "123456789012")

    kit = orca("link", "kit", "--account", "210987654321", "--json")
    data = json.loads(kit.stdout)
    created = orca(
        "link", "create", "prod", "--role-arn", data["role_arn"], "--region", "us-east-1"
    )

    assert kit.exit_code == 0 and created.exit_code == 0, created.output
    assert data["role_arn"] == ROLE
    assert len(data["external_id"]) >= 32
    trust = data["template"]["Resources"]["OrcaRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] == {
        "Ref": "ExternalId"
    }
    [link] = _links()
    block = OrcaLinkedCloudCredentials.load(link["block_document"])
    assert block.external_id.get_secret_value() == data["external_id"]
    assert link["bucket"] == "orca-210987654321-us-east-1"
    assert [n for n in _block_names("secret") if n.startswith("orca-kit-")] == []
    again = orca("link", "create", "prod2", "--role-arn", ROLE)
    assert again.exit_code == 1 and "run `orca link kit` first" in again.stderr  # used up


def test_kit_without_a_user_is_refused_as_an_external_id_is_issued_to_a_user(
    monkeypatch,
) -> None:
    monkeypatch.setenv("ORCA_ACCOUNT_ID", "123456789012")
    monkeypatch.delenv("ORCA_USER", raising=False)

    result = orca("link", "kit")

    assert result.exit_code == 1
    assert "pass --user EMAIL or set ORCA_USER" in result.stderr
    assert "quickcreate" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--role-arn", "arn:aws:iam:123:role/x", "--external-id", EXTERNAL_ID],
            "is not an IAM role ARN",
            id="malformed-arn",
        ),
        pytest.param(
            ["--role-arn", "arn:aws:iam::210987654321:user/bob", "--external-id", EXTERNAL_ID],
            "is an IAM user; Orca needs a role",
            id="user-arn",
        ),
        pytest.param(
            ["--role-arn", ROLE, "--region", "mars-north-1", "--external-id", EXTERNAL_ID],
            "is not an AWS region",
            id="unknown-region",
        ),
        pytest.param(
            ["--role-arn", ROLE, "--external-id", ""], "orca link kit", id="empty-external-id"
        ),
        pytest.param(
            ["--role-arn", ROLE, "--external-id", "short"], "orca link kit", id="short-external-id"
        ),
        pytest.param(
            ["--role-arn", ROLE], "run `orca link kit` first", id="no-external-id-and-no-kit"
        ),
        pytest.param(
            ["--role-arn", ROLE, "--external-id", EXTERNAL_ID, "--local"],
            "either --role-arn ARN or --local",
            id="both-arn-and-local",
        ),
    ],
)
def test_bad_input_is_refused_clearly_and_nothing_is_saved(
    ann: User, args: list[str], message: str
) -> None:
    blocks_before = _credentials_blocks()

    result = orca("link", "create", "prod", *args)

    assert result.exit_code != 0
    assert message in result.output
    assert _links() == []
    assert _credentials_blocks() == blocks_before


def test_a_bad_link_name_is_refused(ann: User) -> None:
    result = orca(
        "link", "create", "Prod Account", "--role-arn", ROLE, "--external-id", EXTERNAL_ID
    )

    assert result.exit_code == 1
    assert "link name 'Prod Account' must be" in result.stderr
    assert _links() == []


def test_a_duplicate_link_name_is_refused_and_the_first_link_stays(ann: User) -> None:
    first_id, second_id = issued(ann), issued(ann)
    first = orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", first_id)
    blocks_before = _credentials_blocks()
    second = orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", second_id)

    assert first.exit_code == 0
    assert _credentials_blocks() == blocks_before
    assert second.exit_code == 1 and "link 'prod' already exists" in second.stderr
    [link] = _links()
    assert (
        OrcaLinkedCloudCredentials.load(link["block_document"]).external_id.get_secret_value()
        == first_id
    )


def test_removing_a_link_in_use_is_refused(ann: User) -> None:
    orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", issued(ann))
    settings = get_settings()
    with session_scope(settings.effective_database_url) as session:
        create_pipeline(session, owner_id=ann.id, name="etl", link_id=_link_id("prod"))

    result = orca("link", "remove", "prod")

    assert result.exit_code == 1
    assert "used by pipeline(s) etl" in result.stderr and "orca pipeline remove" in result.stderr
    assert [link["name"] for link in _links()] == ["prod"]


def _link_id(name: str) -> int:
    from orca_flows.db.repositories.links import get_link_by_name

    with session_scope(get_settings().effective_database_url) as session:
        return get_link_by_name(session, 1, name).id


@pytest.mark.parametrize(
    "command", [["check", "nope"], ["remove", "nope"]], ids=["check", "remove"]
)
def test_an_unknown_link_is_a_clear_error(ann: User, command: list[str]) -> None:
    result = orca("link", *command)

    assert result.exit_code == 1
    assert "link 'nope' does not exist" in result.stderr and "orca link list" in result.stderr


def test_another_users_link_looks_like_no_link(ann: User, monkeypatch) -> None:
    orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", issued(ann))
    CliRunner().invoke(
        app, ["user", "add", "bob@example.com", "--password-stdin"], input="correct horse battery"
    )

    result = orca("link", "check", "prod", "--user", "bob@example.com")

    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_prefect_down_means_no_link_row_either(ann: User) -> None:
    blocks_before = _credentials_blocks()
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        result = orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", issued(ann))

    assert result.exit_code == 1
    assert "could not save block" in result.stderr and "PREFECT_API_URL" in result.stderr
    assert _links() == []
    assert _credentials_blocks() == blocks_before


def test_no_acting_user_says_how_to_name_one(monkeypatch) -> None:
    monkeypatch.delenv("ORCA_USER", raising=False)

    result = orca("link", "list")

    assert result.exit_code == 1
    assert "pass --user EMAIL or set ORCA_USER" in result.stderr


def test_rotating_the_external_id_updates_the_block(ann: User, monkeypatch) -> None:
    monkeypatch.setenv("ORCA_ACCOUNT_ID", "123456789012")
    old = issued(ann)
    orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", old)

    bad = orca("link", "update", "prod", "--external-id", "short")
    typed = orca("link", "update", "prod", "--external-id", "n" * 40)
    good = orca("link", "update", "prod")

    assert bad.exit_code == 1 and "orca link kit" in bad.stderr
    assert typed.exit_code == 1 and "ExternalIds are issued by Orca" in typed.stderr
    assert good.exit_code == 0, good.output
    [link] = _links()
    new = _block_external_id(link["block_document"])
    assert new not in (old, "n" * 40) and len(new) >= 32
    assert new in good.stdout  # shown once, for the stack
    assert "update the stack's ExternalId parameter" in good.stdout
    assert f"ExternalId={new}" in good.stdout  # the aws cloudformation deploy command


def test_the_queue_block_starts_from_the_worker_settings_and_keeps_its_edits_on_update(
    ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCA_ACCOUNT_ID", "123456789012")
    monkeypatch.setenv("ORCA_WORKER_VISIBILITY_SECONDS", "200")
    monkeypatch.setenv("ORCA_WORKER_POLL_SECONDS", "7")
    orca("link", "create", "prod", "--role-arn", ROLE, "--external-id", issued(ann))
    [link] = _links()
    name = queue_block_name(link["block_document"])
    created = OrcaRunQueue.load(name)
    # An edit in the Prefect UI saves the document again under its name.
    created.visibility_timeout_seconds, created.max_messages = 600, 2
    created.save(name, overwrite=True)

    new = issued(ann)  # already in the stack: `update --external-id` takes it
    updated = orca("link", "update", "prod", "--external-id", new)

    assert updated.exit_code == 0, updated.output
    kept = OrcaRunQueue.load(name)
    assert (created.queue_url, created.wait_time_seconds) == (link["queue_url"], 7)
    assert (kept.visibility_timeout_seconds, kept.max_messages, kept.wait_time_seconds) == (
        600,
        2,
        7,
    )
    assert kept.credentials.external_id.get_secret_value() == new
