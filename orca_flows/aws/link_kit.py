"""The link kit: CloudFormation template, console link and CLI commands that link an AWS account."""

from __future__ import annotations

import json
import re
import secrets
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from orca_flows.domain import rules
from orca_flows.domain.regions import console_host, partition_of
from orca_flows.domain.s3_layout import ORCA_PREFIX
from orca_flows.errors import InvalidInputError

__all__ = [
    "BUCKET_PREFIX",
    "DEFAULT_BUCKET_PATTERN",
    "DEFAULT_QUEUE_NAME",
    "DEFAULT_ROLE_NAME",
    "DEFAULT_STACK_NAME",
    "DEFAULT_TAG_KEY",
    "DEFAULT_TAG_VALUE",
    "RUN_SHELL_SCRIPT_DOCUMENT",
    "STAR_RESOURCE_ACTIONS",
    "LinkKit",
    "build_role_policy",
    "build_template",
    "cli_commands",
    "default_bucket_name",
    "make_link_kit",
    "new_external_id",
    "quick_create_url",
    "render_role_policy",
    "role_arn_for",
    "validate_external_id",
]

BUCKET_PREFIX = ORCA_PREFIX
DEFAULT_QUEUE_NAME = "orca-runs.fifo"
DEFAULT_STACK_NAME = "orca-link"
DEFAULT_TAG_KEY = "orca"
DEFAULT_TAG_VALUE = "enabled"
DEFAULT_ROLE_NAME = "OrcaAccess"
# CloudFormation Fn::Sub form of the bucket's default name; default_bucket_name() renders it.
DEFAULT_BUCKET_PATTERN = "orca-${AWS::AccountId}-${AWS::Region}"
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

# The parameters' AllowedPatterns are the domain's rules (orca_flows.domain.rules), which
# build_template also checks, so any default Orca writes into the template is one
# CloudFormation accepts.
_ACCOUNT_PATTERN = f"^{rules.ACCOUNT_ID_PATTERN}$"
_EXTERNAL_ID_PATTERN = f"^{rules.EXTERNAL_ID_PATTERN}$"
_BUCKET_PATTERN = f"^({rules.BUCKET_NAME_PATTERN})?$"  # empty: the default name
_QUEUE_PATTERN = f"^{rules.QUEUE_NAME_PATTERN}$"
_TAG_KEY_PATTERN = f"^{rules.TAG_KEY_PATTERN}$"
_TAG_VALUE_PATTERN = f"^{rules.TAG_VALUE_PATTERN}$"
_STACK_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{0,127}$"
_BUCKET_RULE = "empty, or 3-63 lowercase letters, digits, . and -."
_QUEUE_RULE = "up to 71 letters, digits, - and _, then .fifo."
_TAG_KEY_RULE = "1-128 letters, digits and _.:/=+@-."
_TAG_VALUE_RULE = "1-256 letters, digits, spaces and _.:/=+@-."
_GET_ONE = "run `orca link kit` to get one"

_VISIBILITY_TIMEOUT_SECONDS = 300  # the worker extends it while a run is going
_RETENTION_SECONDS = 1_209_600  # SQS's maximum (14 days): a run may wait long behind its group
_MAX_RECEIVE_COUNT = 10
_NONCURRENT_VERSION_DAYS = 30



@dataclass(frozen=True)
class LinkKit:
    """Everything a user needs to link one AWS account to Orca.

    Attributes:
        external_id: The ExternalId the role's trust policy requires.
        template: The CloudFormation template, with the ExternalId as its default.
        template_json: ``template`` as the JSON text to save as ``orca-link.json``.
        quick_create_url: The console link that opens the stack with its parameters filled in.
        cli_commands: The AWS CLI commands that deploy the same stack and show its outputs.
        orca_account_id: Orca's AWS account, the only principal the role trusts.
        region: Where the stack, bucket and queue are created.
        stack_name: The CloudFormation stack's name.
    """

    external_id: str = field(repr=False)
    template: dict[str, Any] = field(repr=False)
    template_json: str = field(repr=False)
    quick_create_url: str = field(repr=False)
    cli_commands: tuple[str, ...] = field(repr=False)
    orca_account_id: str
    region: str
    stack_name: str


def default_bucket_name(account_id: str, region: str) -> str:
    """The bucket name the template uses when ``BucketName`` is left empty."""
    return DEFAULT_BUCKET_PATTERN.replace("${AWS::AccountId}", account_id).replace(
        "${AWS::Region}", region
    )


def role_arn_for(account_id: str, region: str, role_name: str = DEFAULT_ROLE_NAME) -> str:
    """The ARN of the role the template creates in ``account_id`` (partition from region)."""
    return rules.role_arn(account_id, region, role_name)


def new_external_id() -> str:
    """A fresh random ExternalId: 43 URL-safe characters, all allowed by ``sts:ExternalId``."""
    return secrets.token_urlsafe(32)


def validate_external_id(value: str) -> str:
    """Check an ExternalId against IAM's rules for ``sts:ExternalId`` and Orca's minimum length.

    Args:
        value: The ExternalId given by the user.

    Returns:
        The value, unchanged.

    Raises:
        InvalidInputError: On field ``external_id`` when the value is empty, shorter than
            32 or longer than 1224 characters, or holds a character IAM does not allow.
    """
    return rules.check_external_id(value)


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
    statements = [
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
        validate_external_id(external_id)
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


def quick_create_url(
    *, region: str, template_url: str, stack_name: str, parameters: dict[str, str]
) -> str:
    """The CloudFormation console link that opens a new stack with everything filled in.

    The console loads a quick-create template only from an HTTPS URL in S3, so the link
    points to the template Orca publishes in its own public bucket (``build_template``
    without an ExternalId); the caller passes that URL, and the link's parameters carry
    this link's values.

    Args:
        region: Where the stack is created.
        template_url: The HTTPS S3 URL of the published template.
        stack_name: The stack's name.
        parameters: Template parameters by name, e.g. ``{"ExternalId": "..."}``.

    Returns:
        The URL, every value in it percent-encoded.

    Raises:
        InvalidInputError: On ``region`` when the region is unknown or its partition has no
            public console, on ``template_url`` when it is not HTTPS.
    """
    host = console_host(region)
    if host is None:
        raise InvalidInputError(
            "region",
            f"Region {region!r} is in partition {partition_of(region).name!r}, which has no "
            "public console; "
            "deploy the template with the AWS CLI commands instead.",
        )
    if not template_url.startswith("https://"):
        raise InvalidInputError(
            "template_url", f"The template URL {template_url!r} must be an https:// S3 URL."
        )
    query = {"templateURL": template_url, "stackName": stack_name}
    query.update({f"param_{name}": value for name, value in parameters.items()})
    fragment = "/stacks/quickcreate?" + urlencode(query, quote_via=quote, safe="")
    console = f"https://{host}/cloudformation/home"
    return f"{console}?{urlencode({'region': region})}#{fragment}"


def cli_commands(
    *,
    region: str,
    stack_name: str,
    external_id: str,
    orca_account_id: str,
    template_file: str = "orca-link.json",
) -> list[str]:
    """The AWS CLI commands that deploy the link stack and then show its outputs.

    Args:
        region: Where the stack is created.
        stack_name: The stack's name.
        external_id: The link's ExternalId.
        orca_account_id: Orca's AWS account.
        template_file: Where the user saved the template.

    Returns:
        Two shell-quoted command lines: ``deploy`` (which also updates an existing stack,
        e.g. to rotate the ExternalId) and ``describe-stacks`` for the role ARN.
    """
    where = ["--region", region, "--stack-name", stack_name]
    deploy = [
        *("aws", "cloudformation", "deploy", *where, "--template-file", template_file),
        *("--capabilities", "CAPABILITY_NAMED_IAM", "--no-fail-on-empty-changeset"),
        "--parameter-overrides",
        f"OrcaAccountId={orca_account_id}",
        f"ExternalId={external_id}",
    ]
    describe = ["aws", "cloudformation", "describe-stacks", *where, "--query", "Stacks[0].Outputs"]
    return [shlex.join(deploy), shlex.join(describe)]


def make_link_kit(
    *,
    orca_account_id: str,
    region: str,
    template_url: str,
    external_id: str | None = None,
    stack_name: str = DEFAULT_STACK_NAME,
) -> LinkKit:
    """Build the whole kit for one link.

    Args:
        orca_account_id: Orca's AWS account, 12 digits.
        region: The user's AWS region.
        template_url: The HTTPS S3 URL of Orca's published template (for the console link).
        external_id: Reuse this ExternalId; ``None`` makes a new one.
        stack_name: The CloudFormation stack's name.

    Returns:
        The kit.

    Raises:
        InvalidInputError: On ``account``, ``region``, ``external_id``, ``stack_name`` or
            ``template_url`` when that value cannot work.
    """
    rules.check_account_id(orca_account_id, what="Orca's account")
    partition_of(region)
    _check(
        "stack_name",
        stack_name,
        _STACK_PATTERN,
        f"Stack name {stack_name!r} must start with a letter and hold only letters, digits and -.",
    )
    if external_id is None:
        external_id = new_external_id()
    template = build_template(orca_account_id=orca_account_id, external_id=external_id)
    parameters = {"OrcaAccountId": orca_account_id, "ExternalId": external_id}
    commands = cli_commands(
        region=region,
        stack_name=stack_name,
        external_id=external_id,
        orca_account_id=orca_account_id,
    )
    return LinkKit(
        external_id=external_id,
        template=template,
        template_json=json.dumps(template, indent=2),
        quick_create_url=quick_create_url(
            region=region, template_url=template_url, stack_name=stack_name, parameters=parameters
        ),
        cli_commands=tuple(commands),
        orca_account_id=orca_account_id,
        region=region,
        stack_name=stack_name,
    )


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


def _role() -> dict[str, Any]:
    trust_orca = {
        "Sid": "TrustOrcaWithExternalId",
        "Effect": "Allow",
        "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${OrcaAccountId}:root"}},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}},
    }
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
