"""The names and defaults of what a link creates: stack, role, bucket, queue and instance tag."""

from __future__ import annotations

from orca_flows.domain import rules
from orca_flows.domain.s3_layout import ORCA_PREFIX

__all__ = [
    "BUCKET_PREFIX",
    "DEFAULT_BUCKET_PATTERN",
    "DEFAULT_QUEUE_NAME",
    "DEFAULT_ROLE_NAME",
    "DEFAULT_STACK_NAME",
    "DEFAULT_TAG_KEY",
    "DEFAULT_TAG_VALUE",
    "default_bucket_name",
    "role_arn_for",
]

BUCKET_PREFIX = ORCA_PREFIX
DEFAULT_QUEUE_NAME = "orca-runs.fifo"
DEFAULT_STACK_NAME = "orca-link"
DEFAULT_TAG_KEY = "orca"
DEFAULT_TAG_VALUE = "enabled"
DEFAULT_ROLE_NAME = "OrcaAccess"
# CloudFormation Fn::Sub form of the bucket's default name; default_bucket_name() renders it.
DEFAULT_BUCKET_PATTERN = "orca-${AWS::AccountId}-${AWS::Region}"


def default_bucket_name(account_id: str, region: str) -> str:
    """The bucket name the template uses when ``BucketName`` is left empty.

    Args:
        account_id: The user's AWS account.
        region: The region the stack is deployed in.

    Returns:
        ``orca-<account id>-<region>``.
    """
    return DEFAULT_BUCKET_PATTERN.replace("${AWS::AccountId}", account_id).replace(
        "${AWS::Region}", region
    )


def role_arn_for(account_id: str, region: str, role_name: str = DEFAULT_ROLE_NAME) -> str:
    """The ARN of the role the template creates in ``account_id``.

    Args:
        account_id: The user's AWS account.
        region: The stack's region; it decides the partition in the ARN.
        role_name: The role's name, the template's ``RoleName``.

    Returns:
        ``arn:<partition>:iam::<account id>:role/<role name>``.
    """
    return rules.role_arn(account_id, region, role_name)
