"""The CloudFormation template that links an account: parameters, bucket, queues, role, outputs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from orca_flows.aws.link_defaults import (
    DEFAULT_BUCKET_PATTERN,
    DEFAULT_QUEUE_NAME,
    DEFAULT_ROLE_NAME,
    DEFAULT_TAG_KEY,
    DEFAULT_TAG_VALUE,
)
from orca_flows.aws.link_policy import build_role_policy
from orca_flows.domain import rules
from orca_flows.errors import InvalidInputError

__all__ = ["build_template", "trust_policy"]

# The parameters' AllowedPatterns are the domain's rules (orca_flows.domain.rules), which
# build_template also checks, so any default Orca writes into the template is one
# CloudFormation accepts.
_ACCOUNT_PATTERN = f"^{rules.ACCOUNT_ID_PATTERN}$"
_EXTERNAL_ID_PATTERN = f"^{rules.EXTERNAL_ID_PATTERN}$"
_BUCKET_PATTERN = f"^({rules.BUCKET_NAME_PATTERN})?$"  # empty: the default name
_QUEUE_PATTERN = f"^{rules.QUEUE_NAME_PATTERN}$"
_TAG_KEY_PATTERN = f"^{rules.TAG_KEY_PATTERN}$"
_TAG_VALUE_PATTERN = f"^{rules.TAG_VALUE_PATTERN}$"
_BUCKET_RULE = "empty, or 3-63 lowercase letters, digits, . and -."
_QUEUE_RULE = "up to 71 letters, digits, - and _, then .fifo."
_TAG_KEY_RULE = "1-128 letters, digits and _.:/=+@-."
_TAG_VALUE_RULE = "1-256 letters, digits, spaces and _.:/=+@-."
_GET_ONE = "run `orca link kit` to get one"

_VISIBILITY_TIMEOUT_SECONDS = 300  # the worker extends it while a run is going
_RETENTION_SECONDS = 1_209_600  # SQS's maximum (14 days): a run may wait long behind its group
_MAX_RECEIVE_COUNT = 10
_NONCURRENT_VERSION_DAYS = 30


def build_template(
    *,
    orca_account_id: str,
    external_id: str | None = None,
    bucket_name: str = "",
    queue_name: str = DEFAULT_QUEUE_NAME,
    role_name: str = DEFAULT_ROLE_NAME,
    instance_tag_key: str = DEFAULT_TAG_KEY,
    instance_tag_value: str = DEFAULT_TAG_VALUE,
) -> dict[str, Any]:
    """The CloudFormation template the user deploys in their own account.

    It creates the Orca bucket, the run queue with its dead-letter queue, and the
    role Orca assumes. The arguments become the parameters' defaults.

    Args:
        orca_account_id: Orca's AWS account, the only principal the role trusts.
        external_id: The link's ExternalId; ``None`` leaves the parameter without a
            default, as in the published template every quick-create link points to.
        bucket_name: The bucket's name; empty names it ``orca-<account id>-<region>``.
        role_name: The name of the role Orca assumes.
        queue_name: The run queue's name, ending in ``.fifo``.
        instance_tag_key: The tag that marks the instances Orca may run commands on.
        instance_tag_value: The value that tag must have.

    Returns:
        The template as a JSON-serialisable dict.

    Raises:
        InvalidInputError: When an argument is a value CloudFormation would refuse.
    """
    rules.check_account_id(orca_account_id, what="Orca's account")
    if external_id is not None:
        rules.check_external_id(external_id)
    for name, value, pattern, rule in (
        ("bucket_name", bucket_name, _BUCKET_PATTERN, _BUCKET_RULE),
        ("queue_name", queue_name, _QUEUE_PATTERN, _QUEUE_RULE),
        ("instance_tag_key", instance_tag_key, _TAG_KEY_PATTERN, _TAG_KEY_RULE),
        ("instance_tag_value", instance_tag_value, _TAG_VALUE_PATTERN, _TAG_VALUE_RULE),
    ):
        _check(name, value, pattern, f"{name} {value!r} is not valid: {rule}")
    defaults = {
        "OrcaAccountId": orca_account_id,
        "ExternalId": external_id,
        "RoleName": role_name,
        "BucketName": bucket_name,
        "QueueName": queue_name,
        "InstanceTagKey": instance_tag_key,
        "InstanceTagValue": instance_tag_value,
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Orca link: a bucket, a FIFO run queue and a role Orca assumes (with an "
        "ExternalId) to run scripts on your tagged EC2 instances through SSM.",
        "Metadata": _interface(),
        "Parameters": _parameters(defaults),
        "Conditions": {"HasBucketName": {"Fn::Not": [{"Fn::Equals": [{"Ref": "BucketName"}, ""]}]}},
        "Resources": {**_bucket_resources(), **_queue_resources(), "OrcaRole": _role()},
        "Outputs": _outputs(),
    }


def _check(field_name: str, value: str, pattern: str, message: str) -> None:
    if not re.fullmatch(pattern, value, flags=re.ASCII):
        raise InvalidInputError(field_name, message)


def _interface() -> dict[str, Any]:
    groups = {
        "Orca": ["OrcaAccountId", "ExternalId", "RoleName"],
        "Bucket and queue": ["BucketName", "QueueName"],
        "Instances Orca may run scripts on": ["InstanceTagKey", "InstanceTagValue"],
    }
    return {
        "AWS::CloudFormation::Interface": {
            "ParameterGroups": [
                {"Label": {"default": label}, "Parameters": names}
                for label, names in groups.items()
            ]
        }
    }


def _parameters(defaults: dict[str, str | None]) -> dict[str, Any]:
    parameters: dict[str, dict[str, Any]] = {
        "OrcaAccountId": {
            "Description": "Orca's AWS account, the only one the role trusts.",
            "AllowedPattern": _ACCOUNT_PATTERN,
            "ConstraintDescription": "12 digits.",
        },
        "ExternalId": {
            "Description": "The ExternalId from `orca link kit`; Orca presents it when it "
            "assumes the role.",
            "NoEcho": True,
            "MinLength": rules.MIN_EXTERNAL_ID,
            "MaxLength": rules.MAX_EXTERNAL_ID,
            "AllowedPattern": _EXTERNAL_ID_PATTERN,
            "ConstraintDescription": f"32-1224 letters, digits and _+=,.@:/-; {_GET_ONE}.",
        },
        "RoleName": {
            "Description": "Name of the role Orca assumes.",
            "AllowedPattern": rules.ROLE_NAME_PATTERN,
            "ConstraintDescription": "1-64 letters, digits and _+=,.@-.",
        },
        "BucketName": {
            "Description": "The new bucket for scripts, outputs and logs; empty names it "
            "orca-<account id>-<region>.",
            "AllowedPattern": _BUCKET_PATTERN,
            "ConstraintDescription": _BUCKET_RULE,
        },
        "QueueName": {
            "Description": "The FIFO queue that orders runs; its dead-letter queue is "
            "named like it, with -dlq before .fifo.",
            "AllowedPattern": _QUEUE_PATTERN,
            "ConstraintDescription": _QUEUE_RULE,
        },
        "InstanceTagKey": {
            "Description": "Orca may run commands only on instances that carry this tag...",
            "AllowedPattern": _TAG_KEY_PATTERN,
            "ConstraintDescription": _TAG_KEY_RULE,
        },
        "InstanceTagValue": {
            "Description": "...with this value.",
            "AllowedPattern": _TAG_VALUE_PATTERN,
            "ConstraintDescription": _TAG_VALUE_RULE,
        },
    }
    for name, parameter in parameters.items():
        parameter["Type"] = "String"
        if defaults[name] is not None:
            parameter["Default"] = defaults[name]
    return parameters


def _bucket_resources() -> dict[str, Any]:
    deny_plain_http = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [{"Fn::GetAtt": ["OrcaBucket", "Arn"]}, {"Fn::Sub": "${OrcaBucket.Arn}/*"}],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    lifecycle_rule = {
        "Id": "expire-old-versions",
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": _NONCURRENT_VERSION_DAYS},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    encryption = {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    return {
        "OrcaBucket": {
            "Type": "AWS::S3::Bucket",
            # Outputs and logs are the user's data: removing the link keeps them.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                # A predictable default lets `orca link create` find the bucket unasked.
                "BucketName": {
                    "Fn::If": [
                        "HasBucketName",
                        {"Ref": "BucketName"},
                        {"Fn::Sub": DEFAULT_BUCKET_PATTERN},
                    ]
                },
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [encryption]},
                "VersioningConfiguration": {"Status": "Enabled"},
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "LifecycleConfiguration": {"Rules": [lifecycle_rule]},
            },
        },
        "OrcaBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "OrcaBucket"},
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [deny_plain_http]},
            },
        },
    }


def _queue_resources() -> dict[str, Any]:
    # The pattern on QueueName allows ".fifo" only at the end, so this is its stem.
    stem = {"Fn::Select": [0, {"Fn::Split": [".fifo", {"Ref": "QueueName"}]}]}
    fifo = {
        "FifoQueue": True,
        "MessageRetentionPeriod": _RETENTION_SECONDS,
        "SqsManagedSseEnabled": True,
    }
    # Queued messages only point at runs Orca keeps in its own database.
    deleted_with_stack = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
    return {
        "OrcaDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            **deleted_with_stack,
            "Properties": {"QueueName": {"Fn::Sub": ["${Stem}-dlq.fifo", {"Stem": stem}]}, **fifo},
        },
        "OrcaQueue": {
            "Type": "AWS::SQS::Queue",
            **deleted_with_stack,
            "Properties": {
                "QueueName": {"Ref": "QueueName"},
                **fifo,
                # Orca sends the run id as MessageDeduplicationId: two runs with
                # the same body are still two runs.
                "ContentBasedDeduplication": False,
                "VisibilityTimeout": _VISIBILITY_TIMEOUT_SECONDS,
                "ReceiveMessageWaitTimeSeconds": 20,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["OrcaDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": _MAX_RECEIVE_COUNT,
                },
            },
        },
    }


def _trust_statement(principal: Any, external_ids: Any) -> dict[str, Any]:
    return {
        "Sid": "TrustOrcaWithExternalId",
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": external_ids}},
    }


def trust_policy(
    *, orca_account_id: str, external_ids: Sequence[str], partition: str = "aws"
) -> dict[str, Any]:
    """The role's trust policy as the stack makes it, naming the given ExternalIds.

    What a role that several links share (the local sandbox's) trusts: Orca's account,
    presenting any one of ``external_ids``. A list in ``StringEquals`` matches any of them.

    Args:
        orca_account_id: Orca's AWS account, the only principal the role trusts.
        external_ids: The ExternalIds to accept (at least one).
        partition: The account's partition (``aws``, ``aws-cn``, ``aws-us-gov``).

    Raises:
        InvalidInputError: A bad account id or ExternalId, or none at all.
    """
    rules.check_account_id(orca_account_id, what="Orca's account")
    values = sorted({rules.check_external_id(value) for value in external_ids})
    if not values:
        raise InvalidInputError("external_id", f"A trust policy needs an ExternalId: {_GET_ONE}.")
    principal = f"arn:{partition}:iam::{orca_account_id}:root"
    statement = _trust_statement(principal, values[0] if len(values) == 1 else values)
    return {"Version": "2012-10-17", "Statement": [statement]}


def _role() -> dict[str, Any]:
    trust_orca = _trust_statement(
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${OrcaAccountId}:root"}, {"Ref": "ExternalId"}
    )
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": {
                "Fn::Sub": "Assumed by Orca (account ${OrcaAccountId}) to run scripts on instances "
                "tagged ${InstanceTagKey}=${InstanceTagValue} and use the Orca bucket and queue."
            },
            # A fixed name makes the role ARN predictable: arn:aws:iam::<account>:role/<name>.
            "RoleName": {"Ref": "RoleName"},
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust_orca]},
            "Policies": [
                {"PolicyName": "orca-least-privilege", "PolicyDocument": build_role_policy()}
            ],
        },
    }


def _outputs() -> dict[str, Any]:
    outputs = {
        "RoleArn": ({"Fn::GetAtt": ["OrcaRole", "Arn"]}, "Give this to `orca link create`."),
        "BucketName": ({"Ref": "OrcaBucket"}, "Orca reads and writes only under orca/ here."),
        "QueueUrl": ({"Ref": "OrcaQueue"}, "The FIFO queue that orders runs."),
        "QueueArn": ({"Fn::GetAtt": ["OrcaQueue", "Arn"]}, "The FIFO queue's ARN."),
    }
    return {name: {"Description": text, "Value": value} for name, (value, text) in outputs.items()}
