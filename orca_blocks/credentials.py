"""Credentials of a linked AWS account: Orca assumes the user's role with the link's ExternalId."""

import hashlib
import json
import re
import threading
from functools import cache
from typing import Any, Self

import boto3
import botocore.session
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import ClientError
from prefect.blocks.abstract import CredentialsBlock
from prefect_aws import AwsCredentials
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.sts import assume_role
from orca_flows.errors import AwsError

__all__ = ["OrcaLinkedCloudCredentials"]

# Client factories by block settings (see OrcaLinkedCloudCredentials.client_factory).
_FACTORIES: dict[str, ClientFactory] = {}
_FACTORIES_LOCK = threading.Lock()

_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_ROLE_ARN = re.compile(
    rf"arn:(?P<partition>{'|'.join(_PARTITIONS)}):iam::(?P<account>\d{{12}}):role/"
    r"(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}",
    re.ASCII,
)
_USER_ARN = re.compile(r"arn:[\w-]+:iam::\d{12}:user/.+", re.ASCII)
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)


@cache
def _partition_of_region() -> dict[str, str]:
    """Every region this boto3 knows for STS, mapped to its partition."""
    session = botocore.session.get_session()
    return {
        region: partition
        for partition in _PARTITIONS
        for region in session.get_available_regions("sts", partition_name=partition)
    }


class OrcaLinkedCloudCredentials(CredentialsBlock):
    """Access to a user's AWS account through the IAM role they created for Orca.

    Orca's own identity (``orca_credentials``) calls ``sts:AssumeRole`` on the role
    with the link's ExternalId; the assumed-role credentials are renewed before
    they expire, so clients made from this block keep working in a long-lived worker.

    Example:
        Make an SQS client in the linked account:
        ```python
        from orca_blocks import OrcaLinkedCloudCredentials

        credentials = OrcaLinkedCloudCredentials.load("BLOCK_NAME")
        sqs = credentials.get_client("sqs")
        ```
    """

    # The ExternalId is a secret: keep it (and every other input) out of error messages;
    # the messages below quote the values that are safe to show.
    model_config = ConfigDict(hide_input_in_errors=True)

    _block_type_name = "Orca Linked Cloud Credentials"
    _block_type_slug = "orca-linked-cloud-credentials"
    # The package's own file, orca_blocks/assets/orca.png, as served from the repository.
    _logo_url = (
        "https://raw.githubusercontent.com/orca-orchestration/orca/main/orca_blocks/assets/orca.png"
    )
    _documentation_url = "https://github.com/orca-orchestration/orca/blob/main/docs/cloud-setup.md"
    _description = (
        "Access to a user's AWS account through the IAM role and ExternalId of an Orca "
        "link; the assumed-role credentials are refreshed before they expire."
    )

    role_arn: str = Field(
        default=...,
        description=(
            "ARN of the IAM role Orca assumes in the linked account, "
            "e.g. arn:aws:iam::123456789012:role/OrcaAccess."
        ),
        title="Role ARN",
    )
    external_id: SecretStr = Field(
        default=...,
        description="ExternalId the role's trust policy requires; Orca generated it for this link.",
        title="External ID",
    )
    region_name: str = Field(
        default="us-east-1",
        description="AWS region of the linked account's bucket, queue and instances.",
    )
    role_session_name: str = Field(
        default="orca",
        description="Session name recorded in the linked account's CloudTrail for Orca's calls.",
    )
    session_duration_seconds: int = Field(
        default=3600,
        ge=900,
        le=43200,
        description=(
            "Lifetime of each assumed-role session in seconds, 900 to 43200 "
            "(at most the role's maximum session duration)."
        ),
    )
    endpoint_url: str | None = Field(
        default=None,
        description=(
            "Endpoint for every AWS call, for the local emulator "
            "(e.g. http://127.0.0.1:5000); empty for real AWS."
        ),
        title="Endpoint URL",
    )
    orca_credentials: AwsCredentials = Field(
        default_factory=AwsCredentials,
        description=(
            "Orca's own AWS identity, the one allowed to assume the role; "
            "by default boto3's credential chain."
        ),
    )

    @field_validator("role_arn")
    @classmethod
    def _check_role_arn(cls, value: str) -> str:
        if _USER_ARN.fullmatch(value):
            raise ValueError(
                f"{value} is an IAM user; Orca needs a role it can assume. "
                "Run `orca link kit` to create the role and use the RoleArn it outputs."
            )
        if not _ROLE_ARN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>). "
                "Run `orca link kit` to create the role and use the RoleArn it outputs."
            )
        return value

    @field_validator("external_id")
    @classmethod
    def _check_external_id(cls, value: SecretStr) -> SecretStr:
        if not _EXTERNAL_ID.fullmatch(value.get_secret_value()):
            raise ValueError(
                "The ExternalId must be 2 to 1224 letters, digits or +=,.@:/- characters; "
                "copy the one `orca link kit` generated for this link."
            )
        return value

    @field_validator("region_name")
    @classmethod
    def _check_region_name(cls, value: str) -> str:
        if value not in _partition_of_region():
            raise ValueError(
                f"{value!r} is not an AWS region boto3 knows; use a region code such as "
                "us-east-1 (upgrade boto3 if the region is new)."
            )
        return value

    @field_validator("role_session_name")
    @classmethod
    def _check_role_session_name(cls, value: str) -> str:
        if not _SESSION_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid role session name; use 2 to 64 letters, "
                "digits or +=,.@- characters, e.g. orca-worker."
            )
        return value

    @model_validator(mode="after")
    def _check_region_in_role_partition(self) -> Self:
        role_partition = _ROLE_ARN.fullmatch(self.role_arn)["partition"]
        if _partition_of_region()[self.region_name] != role_partition:
            raise ValueError(
                f"Region {self.region_name} is not in the role's partition {role_partition}; "
                f"choose a region of {role_partition}."
            )
        return self

    @property
    def account_id(self) -> str:
        """The 12-digit id of the linked AWS account, read from the role ARN."""
        return _ROLE_ARN.fullmatch(self.role_arn)["account"]

    def get_boto3_session(self) -> boto3.Session:
        """A session acting as the linked role, renewing the role's credentials before they expire.

        Nothing is called until a client first signs a request. Clients made straight from
        the session miss the block's endpoint and retries; ``get_client`` adds them.
        """
        botocore_session = botocore.session.Session()
        # prefect-aws's AwsCredentials(assume_role_arn=...) assumes the role once and
        # hands out static keys, which expire under a long-lived worker (ExpiredToken
        # after session_duration_seconds). Refreshable credentials call _assume_role
        # again shortly before expiry, under botocore's lock.
        botocore_session._credentials = DeferredRefreshableCredentials(
            refresh_using=self._assume_role, method="assume-role"
        )
        return boto3.Session(botocore_session=botocore_session, region_name=self.region_name)

    def client_factory(self) -> ClientFactory:
        """The client factory of this block's settings, shared by every copy of the block.

        Cached per distinct settings (role, ExternalId, region, endpoint, Orca's identity),
        as prefect-aws caches clients per credentials block: one refreshing session and one
        client per service, instead of a role assumption per call. Changed settings (a
        rotated ExternalId) give a new factory.
        """
        key = hashlib.sha256(
            json.dumps(
                [
                    self.model_dump(mode="json", exclude={"external_id", "orca_credentials"}),
                    self.external_id.get_secret_value(),
                    self.orca_credentials.model_dump(mode="json", context={"include_secrets": True}),
                ],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
        with _FACTORIES_LOCK:
            factory = _FACTORIES.get(key)
            if factory is None:
                factory = _FACTORIES[key] = ClientFactory(
                    self.get_boto3_session(), self.region_name, self.endpoint_url
                )
            return factory

    def get_client(self, client_type: str) -> Any:
        """A client for ``client_type`` (``sqs``, ``ssm``, ``s3``...) acting as the linked role.

        Args:
            client_type: The boto3 service name.

        Returns:
            A boto3 client with the block's region, endpoint and standard retries (the same
            client for the same settings; see ``client_factory``).
        """
        return self.client_factory().client(client_type)

    def _assume_role(self) -> dict[str, str]:
        """Assume the linked role as Orca; botocore's refresh callback."""
        # A new Orca-side session per refresh, so Orca's own credentials are current too.
        sts = ClientFactory(
            self.orca_credentials.get_boto3_session(), self.region_name, self.endpoint_url
        ).client("sts")
        try:
            credentials = assume_role(
                sts,
                self.role_arn,
                session_name=self.role_session_name,
                external_id=self.external_id.get_secret_value(),
                duration_seconds=self.session_duration_seconds,
            )
        except ClientError as error:
            reason = error.response["Error"].get("Message", "").rstrip(".")
            raise AwsError(
                "sts:AssumeRole",
                error.response["Error"].get("Code"),
                f"Orca could not assume {self.role_arn}: {reason}. "
                "Check that the role's trust policy allows Orca's account with this link's "
                "ExternalId; `orca link check <link>` shows each step.",
            ) from error
        return {
            "access_key": credentials.access_key_id,
            "secret_key": credentials.secret_access_key,
            "token": credentials.session_token,
            "expiry_time": credentials.expiration.isoformat(),
        }
