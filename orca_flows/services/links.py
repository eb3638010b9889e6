"""Cloud links: viewing, reaching, rotating and removing a user's links (creating: link_creation)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import SecretStr

from orca_blocks import OrcaLinkedCloudCredentials, OrcaRunQueue
from orca_flows.aws import link_kit
from orca_flows.db.models import CloudLink
from orca_flows.db.repositories import links as links_repo
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import CheckStatus
from orca_flows.domain.views import CheckStep, LinkView
from orca_flows.errors import InUseError, NotFoundError, OrcaError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.blocks import delete_block, load_block, save_block
from orca_flows.prefect_adapter.link_access import (
    LinkAccess,
    load_queue_block,
    new_queue_block,
    queue_block_name,
)
from orca_flows.services import lookup
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "LinkRemoval",
    "access_link",
    "delete_link_blocks",
    "get_link",
    "link_access",
    "list_links",
    "remove_link",
    "update_external_id",
    "view_link",
]

logger = get_logger(__name__)


@dataclass(frozen=True)
class LinkRemoval:
    """A removed link; ``leftover_blocks`` names block documents Prefect did not delete."""

    name: str
    leftover_blocks: tuple[str, ...]


def view_link(link: CloudLink) -> LinkView:
    """The one view of ``link`` (never its ExternalId)."""
    steps = None
    if link.last_check_detail:
        steps = tuple(
            CheckStep(s["name"], CheckStatus(s["status"]), s["detail"], s.get("fix", ""))
            for s in json.loads(link.last_check_detail)
        )
    return LinkView(
        name=link.name,
        provider=link.provider,
        local=link.local,
        role_arn=link.role_arn,
        account_id=link.account_id,
        region=link.region,
        bucket=link.bucket,
        queue_url=link.queue_url,
        block_document=link.block_document_name,
        last_check_status=link.last_check_status,
        last_check_at=link.last_check_at.isoformat() if link.last_check_at else None,
        last_check=steps,
    )


def delete_link_blocks(credentials_block: str) -> tuple[str, ...]:
    """Delete a link's two block documents; returns the names Prefect did not delete."""
    left: list[str] = []
    for block_type, name in (
        (OrcaRunQueue, queue_block_name(credentials_block)),
        (OrcaLinkedCloudCredentials, credentials_block),
    ):
        try:
            delete_block(block_type, name)
        except OrcaError:  # Prefect is down: the caller says what is left
            left.append(name)
    return tuple(left)


def get_link(settings: OrcaSettings, actor: Actor, name: str) -> LinkView:
    """The actor's link ``name`` (another user's link looks like no link).

    Raises:
        NotFoundError: No such link.
    """
    with unit_of_work(settings) as session:
        return view_link(lookup.get_link(session, actor, name))


def list_links(settings: OrcaSettings, actor: Actor) -> tuple[LinkView, ...]:
    """The actor's links by name (links still being created are not shown)."""
    with unit_of_work(settings) as session:
        return tuple(view_link(link) for link in links_repo.list_links(session, actor.user_id))


def link_access(link: CloudLink) -> LinkAccess:
    """Clients into the link's account: loads its credentials block from Prefect.

    A Prefect call: pass a row read in a unit of work that has ended (rows stay readable),
    inside ``prefect_api``.
    """
    return LinkAccess.load(link)


def access_link(settings: OrcaSettings, actor: Actor, name: str) -> LinkAccess:
    """Clients into the account of the actor's link ``name`` (read, then load the block).

    Raises:
        NotFoundError: No such link, or its block document is gone.
        PrefectUnavailableError: Prefect cannot be reached.
    """
    with unit_of_work(settings) as session:
        link = lookup.get_link(session, actor, name)
    with prefect_api(settings):
        return link_access(link)


def remove_link(settings: OrcaSettings, actor: Actor, name: str) -> LinkRemoval:
    """Remove a link, then its block documents; refused while a pipeline uses it.

    The row goes first (one unit: refuse if a pipeline uses it, else delete), then the
    block documents, outside it. If Prefect fails there, the link is still gone and only
    orphan block documents remain, which nothing loads: they are logged and returned by
    name so they can be deleted in Prefect. The bucket, queue and role in the user's
    account stay: delete the stack to remove them.

    Raises:
        NotFoundError: No such link.
        InUseError: Pipelines run through it.
    """
    with unit_of_work(settings) as session:
        link = lookup.get_link(session, actor, name)
        users = links_repo.pipelines_on_link(session, link.id)
        if users:
            raise InUseError(
                f"link {name!r} is used by pipeline(s) {', '.join(users)}; remove them first "
                "(`orca pipeline remove NAME`)."
            )
        links_repo.delete_link(session, link)
    LinkAccess.forget(link)
    with prefect_api(settings):
        left = delete_link_blocks(link.block_document_name)
    if left:
        logger.warning(
            "link %r removed, but Prefect did not delete its block documents %s: delete "
            "them in the Prefect UI (nothing uses them any more)",
            name,
            ", ".join(left),
        )
    return LinkRemoval(name, left)


def update_external_id(
    settings: OrcaSettings, actor: Actor, name: str, external_id: str
) -> LinkView:
    """Rotate a link's ExternalId (after updating the stack's parameter with the same value).

    Reads the link (unit of work), then rewrites its block documents outside it; the row
    does not change. Interrupted between the two saves, running it again finishes it. The
    queue block keeps its settings (edited in Prefect's UI, say); a missing one is made
    anew from the worker settings.

    Raises:
        InvalidInputError: The ExternalId is malformed.
        NotFoundError: No such link.
        PrefectUnavailableError: Prefect cannot be reached.
    """
    with unit_of_work(settings) as session:
        link = lookup.get_link(session, actor, name)
    link_kit.validate_external_id(external_id)
    with prefect_api(settings):
        credentials = load_block(OrcaLinkedCloudCredentials, link.block_document_name)
        credentials.external_id = SecretStr(external_id)
        save_block(credentials, link.block_document_name)
        try:
            queue = load_queue_block(link)
            queue.credentials = credentials
        except NotFoundError:
            queue = new_queue_block(settings, link.queue_url or "", credentials)
        save_block(queue, queue_block_name(link.block_document_name))
    LinkAccess.forget(link)
    return view_link(link)
