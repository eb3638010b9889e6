"""Clients of the sandbox's two accounts: Orca's own (moto's default) and the user's.

The user's side is what the user does at their console: deploy the link stack, launch the
fleet. It acts through an administrator role the emulator lets anyone assume (moto does
not enforce IAM), so what it creates lives in the user's account (111122223333).
"""

from __future__ import annotations

import boto3

from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.sts import assume_role
from orca_flows.sandbox_record import SANDBOX_ACCESS_KEY, SANDBOX_ACCOUNT_ID
from orca_flows.settings import OrcaSettings

__all__ = ["orca_side_factory", "user_side_factory"]

# Who deploys the link stack and launches the fleet: the user at their console, so to speak.
_SANDBOX_ADMIN_ROLE = f"arn:aws:iam::{SANDBOX_ACCOUNT_ID}:role/OrcaSandboxAdmin"


def orca_side_factory(settings: OrcaSettings, endpoint_url: str) -> ClientFactory:
    """Clients acting as Orca's own account on the emulator."""
    session = boto3.Session(
        aws_access_key_id=SANDBOX_ACCESS_KEY,
        aws_secret_access_key=SANDBOX_ACCESS_KEY,
        region_name=settings.region,
    )
    return ClientFactory(session, settings.region, endpoint_url, settings.aws_max_attempts)


def user_side_factory(orca: ClientFactory) -> ClientFactory:
    """Clients acting as the user's administrator in the sandbox's user account."""
    credentials = assume_role(
        orca.client("sts"), _SANDBOX_ADMIN_ROLE, session_name="orca-sandbox-admin"
    )
    session = boto3.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        region_name=orca.region,
    )
    return ClientFactory(session, orca.region, orca.endpoint_url, orca.max_attempts)
