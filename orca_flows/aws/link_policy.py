"""The least-privilege IAM policy of the role Orca assumes in a linked account."""

from __future__ import annotations

import json
from typing import Any

from orca_flows.aws.link_defaults import BUCKET_PREFIX, DEFAULT_TAG_KEY, DEFAULT_TAG_VALUE

__all__ = [
    "RUN_SHELL_SCRIPT_DOCUMENT",
    "STAR_RESOURCE_ACTIONS",
    "build_role_policy",
    "render_role_policy",
]

RUN_SHELL_SCRIPT_DOCUMENT = "AWS-RunShellScript"

# The IAM Service Authorization Reference (parliament's iam_definition.json) lists
# no resource type for these actions, so AWS allows nothing narrower than "*".
# CancelCommand too: it names a command id, and IAM cannot scope it to instances.
STAR_RESOURCE_ACTIONS: tuple[str, ...] = (
    "ssm:CancelCommand",
    "ssm:DescribeInstanceInformation",
    "ssm:GetCommandInvocation",
    "ssm:ListCommandInvocations",
    "ssm:ListCommands",
)
_OBJECT_ACTIONS = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")
_QUEUE_ACTIONS = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
)


def build_role_policy() -> dict[str, Any]:
    """The Orca role's inline policy as it stands in the template.

    The instance condition's key (``ssm:resourceTag/<InstanceTagKey>``) comes from a
    parameter and CloudFormation substitutes no object keys, so the document is the
    JSON text of :func:`render_role_policy`'s policy inside one ``Fn::Sub``; the two
    can therefore never disagree.

    Returns:
        ``{"Fn::Sub": "<policy JSON with ${...} references>"}``.
    """
    policy = render_role_policy(
        partition="${AWS::Partition}",
        region="${AWS::Region}",
        account_id="${AWS::AccountId}",
        bucket="${OrcaBucket}",
        queue_name="${OrcaQueue.QueueName}",
        tag_key="${InstanceTagKey}",
        tag_value="${InstanceTagValue}",
    )
    return {"Fn::Sub": json.dumps(policy, indent=2)}


def render_role_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    bucket: str,
    queue_name: str,
    tag_key: str = DEFAULT_TAG_KEY,
    tag_value: str = DEFAULT_TAG_VALUE,
) -> dict[str, Any]:
    """The Orca role's least-privilege policy with concrete ARNs.

    Args:
        partition: The AWS partition (``aws``, ``aws-cn``, ``aws-us-gov``).
        region: The region of the instances and the queue.
        account_id: The user's AWS account.
        bucket: The Orca bucket's name.
        queue_name: The run queue's name (ends in ``.fifo``).
        tag_key: The tag that marks the instances Orca may run commands on.
        tag_value: The value that tag must have.

    Returns:
        An IAM policy document.
    """
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    statements: list[dict[str, Any]] = [
        # Two SendCommand statements: the tag condition must not apply to the
        # document, which carries no tag and would then never match.
        {
            "Sid": "SendCommandToTaggedInstances",
            "Action": "ssm:SendCommand",
            "Resource": f"arn:{partition}:ec2:{region}:{account_id}:instance/*",
            "Condition": {"StringEquals": {f"ssm:resourceTag/{tag_key}": tag_value}},
        },
        {
            # AWS-owned documents have an empty account in their ARN, which "*"
            # matches; no other account can own a document named AWS-*.
            "Sid": "SendCommandWithRunShellScript",
            "Action": "ssm:SendCommand",
            "Resource": f"arn:{partition}:ssm:{region}:*:document/{RUN_SHELL_SCRIPT_DOCUMENT}",
        },
        {"Sid": "FollowAndCancelCommands", "Action": list(STAR_RESOURCE_ACTIONS), "Resource": "*"},
        {
            "Sid": "ReadWriteOrcaObjects",
            "Action": list(_OBJECT_ACTIONS),
            "Resource": f"{bucket_arn}/{BUCKET_PREFIX}*",
        },
        {
            "Sid": "ListOrcaPrefix",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": f"{BUCKET_PREFIX}*"}},
        },
        {"Sid": "LocateOrcaBucket", "Action": "s3:GetBucketLocation", "Resource": bucket_arn},
        {
            "Sid": "UseRunQueue",
            "Action": list(_QUEUE_ACTIONS),
            "Resource": f"arn:{partition}:sqs:{region}:{account_id}:{queue_name}",
        },
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", **statement} for statement in statements],
    }
