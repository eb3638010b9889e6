"""The link kit and the ExternalIds Orca issues: each one bound to the user it was issued to.

AWS's confused-deputy guidance: the vendor, not the customer, makes the ExternalId, one per
customer. `orca link kit` issues a fresh random one to the signed-in user and records it
(table ``external_ids``); `link create` accepts only an id issued to that user that no
other link uses, and issuing again gives a new one (the older ones stay valid until used).
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from orca_flows.aws import link_defaults, link_kit
from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.sts import caller_identity
from orca_flows.db.repositories import external_ids as external_ids_repo
from orca_flows.domain import rules
from orca_flows.domain.actor import Actor
from orca_flows.errors import ExternalIdNotIssuedError, InvalidInputError
from orca_flows.services.unit_of_work import acting_user, unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "NOT_ISSUED",
    "NO_KIT",
    "KitResult",
    "generate_kit",
    "issue_external_id",
    "orca_account_id",
    "unused_external_id",
]

# The CLI's wording; the web app has its own (it never tells a user to run a command).
NOT_ISSUED = (
    "ExternalIds are issued by Orca: run `orca link kit` and put the ExternalId it gives you "
    "in your stack; this one was not issued to you, or another link uses it already."
)
NO_KIT = (
    "ExternalIds are issued by Orca: run `orca link kit` first; `orca link create` then "
    "uses the newest ExternalId it issued to you that no link uses."
)


@dataclass(frozen=True)
class KitResult:
    """The kit plus what Orca can predict about the link it will create."""

    kit: link_kit.LinkKit
    role_arn: str | None
    create_command: str


def issue_external_id(settings: OrcaSettings, actor: Actor) -> str:
    """Issue a fresh random ExternalId to the actor and record it, unused (one unit of work).

    Raises:
        NotFoundError: The actor's account was removed.
    """
    value = link_kit.new_external_id()
    with unit_of_work(settings) as session:
        external_ids_repo.issue(session, acting_user(session, actor).id, value)
    return value


def unused_external_id(settings: OrcaSettings, actor: Actor, given: str | None) -> str:
    """The ExternalId a new link of the actor's will use: ``given`` or the newest unused one.

    A first look, to refuse early; the link's reservation claims it for good (a
    compare-and-set), so a race between two creations still gives it to one link only.

    Raises:
        InvalidInputError: ``given`` is malformed.
        ExternalIdNotIssuedError: ``given`` was not issued to the actor or is in use, or
            nothing was given and no unused ExternalId is waiting.
    """
    if given is not None:
        link_kit.validate_external_id(given)
    with unit_of_work(settings) as session:
        owner = acting_user(session, actor)
        if given is None:
            newest = external_ids_repo.newest_unused(session, owner.id)
            if newest is None:
                raise ExternalIdNotIssuedError(NO_KIT, no_kit=True)
            return newest
        row = external_ids_repo.find_for_owner(session, owner.id, given)
        if row is None or row.link_id is not None:
            raise ExternalIdNotIssuedError(NOT_ISSUED)
        return given


def orca_account_id(settings: OrcaSettings) -> str:
    """Orca's own AWS account: ORCA_ACCOUNT_ID, else asked of STS (outside any unit of work).

    Raises:
        InvalidInputError: ORCA_ACCOUNT_ID is malformed, or STS cannot be asked.
    """
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
    actor: Actor,
    *,
    region: str,
    user_account_id: str | None = None,
) -> KitResult:
    """Make a link kit with an ExternalId newly issued to the actor.

    The ExternalId is recorded as the actor's (unused) only after the kit was built, so a
    refused kit issues nothing; `orca link create` picks the newest unused one by default,
    so the user never has to copy it around. STS (Orca's own account, unless
    ORCA_ACCOUNT_ID is set) is asked before the unit of work opens.

    Args:
        settings: Orca's settings (Orca's account id, the published template URL).
        actor: The acting user, to whom the ExternalId is issued.
        region: The user's AWS region.
        user_account_id: The user's account; lets the kit name the role ARN to link.

    Raises:
        InvalidInputError: A bad account id or region, or Orca's account is unknown.
    """
    role_arn = None
    if user_account_id is not None:
        rules.check_account_id(user_account_id)
        role_arn = link_defaults.role_arn_for(user_account_id, region)
    external_id = link_kit.new_external_id()
    kit = link_kit.make_link_kit(
        orca_account_id=orca_account_id(settings),
        region=region,
        template_url=settings.link_template_url,
        external_id=external_id,
    )
    with unit_of_work(settings) as session:
        external_ids_repo.issue(session, acting_user(session, actor).id, external_id)
    command = ["orca", "link", "create", "NAME", "--role-arn", role_arn or "ROLE_ARN"]
    command += ["--region", region]
    return KitResult(kit, role_arn, " ".join(command))
