"""Credentials of a linked AWS account: Orca assumes the user's role with the link's ExternalId."""

import hashlib
import json
import threading
from typing import Any, Self

import boto3
import botocore.session
from botocore.credentials import CredentialProvider, DeferredRefreshableCredentials
from botocore.exceptions import ClientError
from prefect.blocks.abstract import CredentialsBlock
from prefect_aws import AwsCredentials
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from orca_blocks._validation import refused_as_value_error
from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.sts import assume_role
from orca_flows.domain import rules
from orca_flows.domain.regions import partition_of
from orca_flows.errors import AwsError

__all__ = ["OrcaLinkedCloudCredentials"]

# Client factories by block settings (see OrcaLinkedCloudCredentials.client_factory).
_FACTORIES: dict[str, ClientFactory] = {}
_FACTORIES_LOCK = threading.Lock()


# The package's own file, orca_blocks/assets/orca.png, as served from the repository.
_LOGO_URL = (
    "https://raw.githubusercontent.com/orca-orchestration/orca/main/orca_blocks/assets/orca.png"
)
_DOCUMENTATION_URL = "https://github.com/orca-orchestration/orca/blob/main/docs/cloud-setup.md"


class _AssumeRoleProvider(CredentialProvider):
    """A credential provider that assumes the link's role, refreshed before it expires."""

    METHOD = "assume-role"

    def __init__(self, assume: Any) -> None:
        super().__init__()
        self._assume = assume

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(refresh_using=self._assume, method=self.METHOD)


class OrcaLinkedCloudCredentials(CredentialsBlock):
    """Access to a user's AWS account through the IAM role they created for Orca.

    Orca's own identity (``orca_credentials``) calls ``sts:AssumeRole`` on the role
    with the link's ExternalId; the assumed-role credentials are renewed before
    they expire, so clients made from this block keep working in a long-lived worker.

    ``orca_blocks.OrcaLinkedCloud`` is this class under a shorter name (the same block
    type): ``OrcaLinkedCloud.load("orca-link-...")`` in a user's own flow gives the same
    refreshing clients, and ``get_boto3_session()`` a boto3 session whose own clients
    refresh too (they lack the link's endpoint and retries; ``get_client`` adds them).

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
    # Strings, as Prefect's own blocks give them (its schema turns them into URLs).
    _logo_url = _LOGO_URL  # type: ignore[assignment]
    _documentation_url = _DOCUMENTATION_URL  # type: ignore[assignment]
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
        refused_as_value_error(rules.parse_role_arn, value)
        return value

    @field_validator("external_id")
    @classmethod
    def _check_external_id(cls, value: SecretStr) -> SecretStr:
        # What STS accepts, not only what Orca issues: a document saved by hand or by an
        # older Orca keeps loading (see orca_flows.domain.rules on ExternalIds).
        refused_as_value_error(
            rules.check_external_id,
            value.get_secret_value(),
            minimum=rules.STS_MIN_EXTERNAL_ID,
        )
        return value

    @field_validator("region_name")
    @classmethod
    def _check_region_name(cls, value: str) -> str:
        refused_as_value_error(partition_of, value)
        return value

    @field_validator("role_session_name")
    @classmethod
    def _check_role_session_name(cls, value: str) -> str:
        return refused_as_value_error(rules.check_role_session_name, value)

    @model_validator(mode="after")
    def _check_region_in_role_partition(self) -> Self:
        refused_as_value_error(
            rules.check_region_in_role_partition,
            self.region_name,
            rules.parse_role_arn(self.role_arn),
        )
        return self

    @property
    def account_id(self) -> str:
        """The 12-digit id of the linked AWS account, read from the role ARN."""
        return rules.parse_role_arn(self.role_arn).account_id

    def get_boto3_session(self) -> boto3.Session:
        """A session acting as the linked role, renewing the role's credentials before they expire.

        Nothing is called until a client first signs a request. Clients made straight from
        the session miss the block's endpoint and retries; ``get_client`` adds them.
        """
        botocore_session = botocore.session.Session()
        # prefect-aws's AwsCredentials(assume_role_arn=...) assumes the role once and
        # hands out static keys, which expire under a long-lived worker (ExpiredToken
        # after session_duration_seconds). Refreshable credentials call _assume_role
        # again shortly before expiry, under botocore's lock. They are the first provider
        # of the session's credential chain (botocore's public resolver API), so nothing
        # from the environment or a profile is ever used instead.
        resolver = botocore_session.get_component("credential_provider")
        resolver.insert_before("env", _AssumeRoleProvider(self._assume_role))
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
                    self.orca_credentials.model_dump(
                        mode="json", context={"include_secrets": True}
                    ),
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
