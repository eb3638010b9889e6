"""The link kit: a template and a fresh ExternalId, remembered for the next `link create`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from prefect.blocks.system import Secret

from orca_flows.aws import link_defaults, link_kit
from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.sts import caller_identity
from orca_flows.domain import rules
from orca_flows.domain.actor import Actor
from orca_flows.errors import InvalidInputError, NotFoundError, OrcaError
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.blocks import delete_block, load_block, save_block
from orca_flows.settings import OrcaSettings

__all__ = ["KitResult", "forget_external_id", "generate_kit", "remembered_external_id"]


@dataclass(frozen=True)
class KitResult:
    """The kit plus what Orca can predict about the link it will create."""

    kit: link_kit.LinkKit
    role_arn: str | None
    create_command: str
    external_id_saved: bool


def _pending_secret_name(actor: Actor) -> str:
    # By email, not row id: several Orca databases may share one Prefect server.
    return f"orca-kit-{hashlib.sha256(actor.email.encode()).hexdigest()[:16]}"


def _orca_account_id(settings: OrcaSettings) -> str:
    if settings.account_id:
        return rules.check_account_id(settings.account_id, what="ORCA_ACCOUNT_ID")
    try:
        return caller_identity(
            ClientFactory(boto3.Session(), settings.region).client("sts")
        ).account
    except (BotoCoreError, ClientError) as error:
        raise InvalidInputError(
            "account",
            f"Orca could not learn its own AWS account id from STS ({error}); "
            "set ORCA_ACCOUNT_ID to the 12-digit account Orca's workers run in.",
        ) from error


def generate_kit(
    settings: OrcaSettings,
    actor: Actor | None,
    *,
    region: str,
    user_account_id: str | None = None,
) -> KitResult:
    """Make a link kit with a fresh ExternalId; with an actor, remember the ExternalId.

    The ExternalId is kept as a Prefect Secret block until `orca link create` uses it, so
    the user never has to copy it around (they may still pass ``--external-id``). No
    database: STS (Orca's own account, unless ORCA_ACCOUNT_ID is set) and Prefect only.

    Args:
        settings: Orca's settings (Orca's account id, the published template URL).
        actor: The acting user, if any.
        region: The user's AWS region.
        user_account_id: The user's account; lets the kit name the role ARN to link.

    Raises:
        InvalidInputError: A bad account id or region, or Orca's account is unknown.
        PrefectUnavailableError: The ExternalId could not be remembered.
    """
    kit = link_kit.make_link_kit(
        orca_account_id=_orca_account_id(settings),
        region=region,
        template_url=settings.link_template_url,
    )
    role_arn = None
    if user_account_id is not None:
        rules.check_account_id(user_account_id)
        role_arn = link_defaults.role_arn_for(user_account_id, region)
    command = ["orca", "link", "create", "NAME", "--role-arn", role_arn or "ROLE_ARN"]
    command += ["--region", region]
    if actor is not None:
        with prefect_api(settings):
            save_block(Secret(value=kit.external_id), _pending_secret_name(actor))
    else:
        command += ["--external-id", kit.external_id]
    return KitResult(kit, role_arn, " ".join(command), actor is not None)


def remembered_external_id(actor: Actor) -> str:
    """The ExternalId of the actor's last kit (a Prefect call: inside ``prefect_api``).

    Raises:
        InvalidInputError: No kit was generated (or its ExternalId was used up).
        PrefectUnavailableError: Prefect cannot be reached.
    """
    try:
        return load_block(Secret, _pending_secret_name(actor)).get()
    except NotFoundError:
        raise InvalidInputError(
            "external_id",
            "no ExternalId for this link: run `orca link kit` first (Orca remembers the "
            "ExternalId it generates) or pass --external-id.",
        ) from None


def forget_external_id(actor: Actor) -> None:
    """Drop the remembered ExternalId once a link uses it (inside ``prefect_api``)."""
    try:
        delete_block(Secret, _pending_secret_name(actor))
    except OrcaError:
        pass  # a leftover pending ExternalId is harmless; the next kit replaces it
