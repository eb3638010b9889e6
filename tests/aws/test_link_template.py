"""The link template: one AWS accepts, a role that trusts only Orca, a private bucket, FIFO queues."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.helpers import REGIONS

from orca_flows.aws.link_kit import make_link_kit
from orca_flows.aws.link_template import build_template
from orca_flows.errors import InvalidInputError

ORCA_ACCOUNT = "111122223333"
TEMPLATE_URL = "https://orca-public.s3.amazonaws.com/link/orca-link.json"
# Every character IAM allows in an ExternalId, including the ones URLs and shells treat specially.
ODD_EXTERNAL_ID = "Abc+def=ghi,jkl.mno@pqr:stu/vwx-yz_0123456789"


@pytest.mark.parametrize(
    "template",
    [
        pytest.param(build_template(orca_account_id=ORCA_ACCOUNT), id="published"),
        pytest.param(
            make_link_kit(
                orca_account_id=ORCA_ACCOUNT,
                region="eu-west-1",
                template_url=TEMPLATE_URL,
                external_id=ODD_EXTERNAL_ID,
            ).template,
            id="kit",
        ),
        pytest.param(
            build_template(
                orca_account_id=ORCA_ACCOUNT,
                bucket_name="my.orca-bucket",
                queue_name="team_runs.fifo",
                instance_tag_key="team:orca",
                instance_tag_value="data eng",
            ),
            id="custom-names",
        ),
    ],
)
def test_cfn_lint_accepts_the_template_in_every_region(template: dict, tmp_path: Path) -> None:
    path = tmp_path / "orca-link.json"
    path.write_text(json.dumps(template, indent=2))

    # Errors, warnings and informational rules in every region cfn-lint knows. Not the
    # experimental rules: I4010 there asks for AI "Context" metadata, not correctness.
    matches = lint_file(path, config=ManualArgs(regions=REGIONS, include_checks=["I"]))

    assert [str(match) for match in matches] == []


def test_role_trusts_only_orca_and_only_with_the_external_id() -> None:
    template = build_template(orca_account_id=ORCA_ACCOUNT, external_id=ODD_EXTERNAL_ID)
    role = template["Resources"]["OrcaRole"]["Properties"]

    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${OrcaAccountId}:root"}
    }
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    assert role["MaxSessionDuration"] == 3600
    parameters = template["Parameters"]
    assert parameters["OrcaAccountId"]["Default"] == ORCA_ACCOUNT
    assert parameters["ExternalId"]["NoEcho"] is True


def test_bucket_is_private_encrypted_versioned_and_tls_only() -> None:
    resources = build_template(orca_account_id=ORCA_ACCOUNT)["Resources"]
    bucket = resources["OrcaBucket"]["Properties"]

    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (deny,) = resources["OrcaBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert resources["OrcaBucket"]["DeletionPolicy"] == "Retain"


def test_queue_is_fifo_with_explicit_dedup_and_a_fifo_dead_letter_queue() -> None:
    template = build_template(orca_account_id=ORCA_ACCOUNT)
    queue = template["Resources"]["OrcaQueue"]["Properties"]
    dead_letter = template["Resources"]["OrcaDeadLetterQueue"]["Properties"]

    assert queue["FifoQueue"] is True
    assert queue["ContentBasedDeduplication"] is False
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["OrcaDeadLetterQueue", "Arn"]
    }
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 1
    assert dead_letter["FifoQueue"] is True
    assert dead_letter["QueueName"]["Fn::Sub"][0].endswith(".fifo")
    assert template["Parameters"]["QueueName"]["Default"].endswith(".fifo")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"queue_name": "orca-runs"}, "queue_name", id="queue-not-fifo"),
        pytest.param({"queue_name": "a.fifo.fifo"}, "queue_name", id="queue-two-suffixes"),
        pytest.param({"bucket_name": "Orca_Bucket"}, "bucket_name", id="bucket-uppercase"),
        pytest.param({"instance_tag_key": 'or"ca'}, "instance_tag_key", id="tag-key-quote"),
        pytest.param({"instance_tag_value": ""}, "instance_tag_value", id="tag-value-empty"),
        pytest.param({"external_id": "x" * 31}, "external_id", id="external-id"),
    ],
)
def test_build_template_refuses_values_cloudformation_would_refuse(
    overrides: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        build_template(orca_account_id=ORCA_ACCOUNT, **overrides)

    assert raised.value.field == field
