"""STS: who am I, and assume a linked account's role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

__all__ = ["AssumedCredentials", "CallerIdentity", "assume_role", "caller_identity"]


@dataclass(frozen=True)
class CallerIdentity:
    """The account and principal a set of credentials belongs to."""

    account: str
    arn: str
    user_id: str


@dataclass(frozen=True)
class AssumedCredentials:
    """Temporary credentials returned by ``AssumeRole``."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


def caller_identity(client: STSClient) -> CallerIdentity:
    """The identity behind ``client``'s credentials (``sts:GetCallerIdentity``)."""
    response = client.get_caller_identity()
    return CallerIdentity(
        account=response["Account"], arn=response["Arn"], user_id=response["UserId"]
    )


def assume_role(
    client: STSClient,
    role_arn: str,
    *,
    session_name: str,
    external_id: str | None = None,
    duration_seconds: int = 3600,
) -> AssumedCredentials:
    """Assume ``role_arn`` (with the link's ExternalId) and return its temporary credentials."""
    params: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": duration_seconds,
    }
    if external_id is not None:
        params["ExternalId"] = external_id
    credentials = client.assume_role(**params)["Credentials"]
    return AssumedCredentials(
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
        expiration=credentials["Expiration"],
    )
