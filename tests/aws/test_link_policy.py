"""The Orca role's policy: least privilege, star resources only where AWS requires them."""

from __future__ import annotations

import json

import parliament

from orca_flows.aws.link_policy import STAR_RESOURCE_ACTIONS, build_role_policy, render_role_policy
from orca_flows.aws.link_template import build_template

ORCA_ACCOUNT = "111122223333"
USER_ACCOUNT = "444455556666"
CONCRETE = {
    "partition": "aws",
    "region": "eu-west-1",
    "account_id": USER_ACCOUNT,
    "bucket": "orca-data-bucket",
    "queue_name": "orca-runs.fifo",
    "tag_key": "orca",
    "tag_value": "enabled",
}


def _statements(policy: dict) -> list[dict]:
    return policy["Statement"]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _resource_types(action: str) -> list[str]:
    """Resource types the IAM Service Authorization Reference lists for an action."""
    service, name = action.split(":")
    definition = next(s for s in parliament.iam_definition if s["prefix"] == service)
    privilege = next(p for p in definition["privileges"] if p["privilege"] == name)
    return [r["resource_type"] for r in privilege["resource_types"] if r["resource_type"]]


def test_parliament_finds_nothing_wrong_with_the_role_policy() -> None:
    policy = render_role_policy(**CONCRETE)

    findings = parliament.analyze_policy_string(
        json.dumps(policy), include_community_auditors=True
    ).findings

    # The one finding is parliament reading statements one at a time: IAM authorises
    # SendCommand on the instance and on the document separately, and the document is
    # granted by its own statement, since the instance's tag condition cannot apply to it.
    assert [(f.issue, f.detail) for f in findings] == [
        (
            "RESOURCE_MISMATCH",
            [{"action": "ssm:SendCommand", "required_format": "arn:*:ssm:*:*:document/*"}],
        )
    ]
    document_statements = [
        s for s in _statements(policy) if s["Resource"].endswith(":document/AWS-RunShellScript")
    ]
    assert [s["Action"] for s in document_statements] == ["ssm:SendCommand"]
    assert "Condition" not in document_statements[0]


def test_role_policy_has_no_wildcard_actions_and_star_only_where_aws_requires_it() -> None:
    statements = _statements(render_role_policy(**CONCRETE))

    actions = [a for s in statements for a in _as_list(s["Action"])]
    assert not [a for a in actions if "*" in a]
    star_actions = [
        a for s in statements if "*" in _as_list(s["Resource"]) for a in _as_list(s["Action"])
    ]
    assert sorted(star_actions) == sorted(STAR_RESOURCE_ACTIONS)
    # The reference lists no resource type for those, and at least one for every other.
    assert {a: _resource_types(a) for a in STAR_RESOURCE_ACTIONS} == {
        a: [] for a in STAR_RESOURCE_ACTIONS
    }
    assert all(_resource_types(a) for a in set(actions) - set(STAR_RESOURCE_ACTIONS))


def test_role_policy_reaches_only_tagged_instances_the_prefix_and_the_queue() -> None:
    by_sid = {s["Sid"]: s for s in _statements(render_role_policy(**CONCRETE))}

    instances = by_sid["SendCommandToTaggedInstances"]
    assert instances["Resource"] == f"arn:aws:ec2:eu-west-1:{USER_ACCOUNT}:instance/*"
    assert instances["Condition"] == {"StringEquals": {"ssm:resourceTag/orca": "enabled"}}
    objects = by_sid["ReadWriteOrcaObjects"]
    assert objects["Resource"] == "arn:aws:s3:::orca-data-bucket/orca/*"
    listing = by_sid["ListOrcaPrefix"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "orca/*"}}
    queue = by_sid["UseRunQueue"]
    assert queue["Resource"] == f"arn:aws:sqs:eu-west-1:{USER_ACCOUNT}:orca-runs.fifo"
    assert "sqs:SendMessage" in queue["Action"]


def test_template_policy_is_the_rendered_policy() -> None:
    role = build_template(orca_account_id=ORCA_ACCOUNT)["Resources"]["OrcaRole"]
    text = role["Properties"]["Policies"][0]["PolicyDocument"]["Fn::Sub"]
    assert text == build_role_policy()["Fn::Sub"]

    for reference, value in {
        "${AWS::Partition}": "aws",
        "${AWS::Region}": "eu-west-1",
        "${AWS::AccountId}": USER_ACCOUNT,
        "${OrcaBucket}": "orca-data-bucket",
        "${OrcaQueue.QueueName}": "orca-runs.fifo",
        "${InstanceTagKey}": "orca",
        "${InstanceTagValue}": "enabled",
    }.items():
        text = text.replace(reference, value)

    assert "${" not in text
    assert json.loads(text) == render_role_policy(**CONCRETE)
