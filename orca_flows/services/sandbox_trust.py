"""The local sandbox's role trusts the ExternalIds issued to the users who linked it.

On real AWS, a user puts the ExternalId `orca link kit` issued to them into their own
stack. The sandbox plays that user's account for everyone on this Orca: its one role is
shared by every sandbox link, so each link's issued ExternalId is added to the role's
trust policy here (as the sandbox's administrator, the way `orca local up` deployed the
stack), next to the ExternalId the stack was deployed with. AWS calls only: never inside a
unit of work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.link_defaults import DEFAULT_ROLE_NAME
from orca_flows.aws.link_template import trust_policy
from orca_flows.aws.sts import assume_role, caller_identity
from orca_flows.db.repositories import external_ids as external_ids_repo
from orca_flows.errors import SandboxError
from orca_flows.sandbox_record import (
    SANDBOX_ACCESS_KEY,
    SANDBOX_ACCOUNT_ID,
    SandboxState,
    sandbox_external_id,
)
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["retrust_sandbox_links", "trust_sandbox_external_ids"]

# The sandbox account's administrator, as `orca local up` deploys the stack (local.sandbox).
_SANDBOX_ADMIN_ROLE = f"arn:aws:iam::{SANDBOX_ACCOUNT_ID}:role/OrcaSandboxAdmin"


def trust_sandbox_external_ids(
    settings: OrcaSettings, state: SandboxState, external_ids: Iterable[str]
) -> None:
    """Make the sandbox's role trust ``external_ids``, every id a sandbox link holds now,
    and the stack's own.

    The links' ids are read again right before the update (a unit of work, then the AWS
    calls), so two links created or rotated at once do not drop each other's id.

    Args:
        settings: Orca's settings (ORCA_HOME holds the stack's ExternalId).
        state: The running sandbox.
        external_ids: The ExternalIds the sandbox links use (or are about to).

    Raises:
        SandboxError: The emulator refused (its role is gone, say, after a restart).
    """
    with unit_of_work(settings) as session:
        held = set(external_ids_repo.values_of_local_links(session))
    try:
        _update_trust(settings, state, sorted(held | set(external_ids)))
    except (BotoCoreError, ClientError) as error:
        raise SandboxError(
            f"the local sandbox's role could not be made to trust the link's ExternalId "
            f"({error}); run `orca local up` (it re-creates the role) and try again."
        ) from error


def retrust_sandbox_links(settings: OrcaSettings, state: SandboxState) -> None:
    """Make a re-created sandbox role trust the ExternalIds of the existing sandbox links.

    For `orca local up` after the emulator lost its state: the stack comes back with its
    own ExternalId only. Reads the links (unit of work), then updates the role (AWS).

    Raises:
        DatabaseError: Orca's database cannot be reached.
        SandboxError: The emulator refused.
    """
    with unit_of_work(settings) as session:
        values = list(external_ids_repo.values_of_local_links(session))
    if values:
        trust_sandbox_external_ids(settings, state, values)


def _update_trust(settings: OrcaSettings, state: SandboxState, external_ids: Iterable[str]) -> None:
    session = boto3.Session(
        aws_access_key_id=SANDBOX_ACCESS_KEY,
        aws_secret_access_key=SANDBOX_ACCESS_KEY,
        region_name=state.region,
    )
    orca = ClientFactory(session, state.region, state.endpoint_url, settings.aws_max_attempts)
    admin = assume_role(orca.client("sts"), _SANDBOX_ADMIN_ROLE, session_name="orca-sandbox-admin")
    user_side = ClientFactory(
        boto3.Session(
            aws_access_key_id=admin.access_key_id,
            aws_secret_access_key=admin.secret_access_key,
            aws_session_token=admin.session_token,
            region_name=state.region,
        ),
        state.region,
        state.endpoint_url,
        settings.aws_max_attempts,
    )
    document = trust_policy(
        orca_account_id=caller_identity(orca.client("sts")).account,
        external_ids=[sandbox_external_id(settings), *external_ids],
    )
    user_side.client("iam").update_assume_role_policy(
        RoleName=DEFAULT_ROLE_NAME, PolicyDocument=json.dumps(document)
    )
