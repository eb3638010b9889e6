"""Cloud links: viewing, reaching, rotating and removing a user's links (creating: link_creation)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import SecretStr

from orca_blocks import OrcaEc2Runner, OrcaLinkedCloudCredentials, OrcaRunQueue
from orca_flows.aws import link_defaults, link_kit
from orca_flows.db.models import CloudLink
from orca_flows.db.repositories import external_ids as external_ids_repo
from orca_flows.db.repositories import links as links_repo
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import CheckStatus
from orca_flows.domain.views import CheckStep, LinkView
from orca_flows.errors import (
    ExternalIdNotIssuedError,
    InUseError,
    NotFoundError,
    OrcaError,
    SandboxNotRunningError,
)
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.blocks import delete_block, load_block, save_block
from orca_flows.prefect_adapter.link_access import (
    LinkAccess,
    load_queue_block,
    new_queue_block,
    queue_block_name,
    runner_block_name,
)
from orca_flows.sandbox_record import SandboxState, running_sandbox
from orca_flows.services import lookup
from orca_flows.services.link_kits import (
    NOT_ISSUED,
    issue_external_id,
    orca_account_id,
    unused_external_id,
)
from orca_flows.services.sandbox_trust import trust_sandbox_external_ids
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "LinkRemoval",
    "Rotation",
    "access_link",
    "delete_link_blocks",
    "get_link",
    "link_access",
    "list_links",
    "remove_link",
    "rotate_external_id",
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
    """Delete a link's block documents (credentials, queue, EC2 runner; a link made before
    the runner block has none, which is fine); returns the names Prefect did not delete."""
    left: list[str] = []
    for block_type, name in (
        (OrcaEc2Runner, runner_block_name(credentials_block)),
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
    account stay: delete the stack to remove them. The link's ExternalId is released: the
    same user may link the same stack again with it.

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
        # The foreign key's ON DELETE SET NULL frees it too; said here for the reader.
        external_ids_repo.release(session, link.id)
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


@dataclass(frozen=True)
class Rotation:
    """A link rotated to a newly issued ExternalId.

    ``external_id`` is shown once to the user of a real account, who puts it in their
    stack (``stack_commands``); for a sandbox link Orca updated the role's trust itself
    (``trust_updated``) and the commands are empty.
    """

    link: LinkView
    external_id: str = field(repr=False)
    trust_updated: bool
    stack_commands: tuple[str, ...] = field(repr=False)


def rotate_external_id(
    settings: OrcaSettings, actor: Actor, name: str, external_id: str | None = None
) -> Rotation:
    """Rotate a link to a newly issued ExternalId and release the old one.

    Steps, none holding a unit of work across a network call: read the link and its
    ExternalId (unit), issue a new one to the actor or take ``external_id`` if it is one
    `orca link kit` issued to them and no link uses (unit); for a sandbox link make the
    sandbox's role trust the new one instead of the old (AWS); rewrite the credentials and
    queue blocks (Prefect); then mark the new one used by this link and release the old
    (unit). Interrupted before the last step, the link may present an ExternalId the
    database does not yet name: running it again finishes with another new one. The
    queue block keeps its settings (edited in Prefect's UI, say); a missing one is made
    anew from the worker settings.

    Args:
        settings: Orca's settings.
        actor: The acting user.
        name: The link.
        external_id: An ExternalId `orca link kit` issued to the actor, already in the
            stack (no gap while the stack is updated); default a fresh one.

    Raises:
        NotFoundError: No such link (or it was removed meanwhile).
        InvalidInputError: ``external_id`` is malformed.
        ExternalIdNotIssuedError: ``external_id`` was not issued to the actor or is in use.
        PrefectUnavailableError: Prefect cannot be reached.
    """
    with unit_of_work(settings) as session:
        link = lookup.get_link(session, actor, name)
        old = external_ids_repo.value_for_link(session, link.id)
        trusted = [
            value for value in external_ids_repo.values_of_local_links(session) if value != old
        ]
    # What can refuse goes before issuing, so a refused rotation issues nothing.
    state = running_sandbox(settings) if link.local else None
    if link.local and state is None:
        raise SandboxNotRunningError()
    orca_account = None if link.local else orca_account_id(settings)
    if external_id is None:
        new = issue_external_id(settings, actor)
    else:
        new = unused_external_id(settings, actor, external_id)
    # Bound first (one unit: the old id released, the new one claimed by compare-and-set),
    # so no other link can take the new id while the blocks are saved with it.
    with unit_of_work(settings) as session:
        current = lookup.get_link(session, actor, name)
        if current.id != link.id:
            raise NotFoundError("link", name, "It was removed meanwhile; see `orca link list`.")
        external_ids_repo.release(session, link.id)
        if not external_ids_repo.claim(session, owner_id=link.owner_id, value=new, link_id=link.id):
            raise ExternalIdNotIssuedError(NOT_ISSUED)
    try:
        commands = _apply_rotation(settings, link, state, orca_account, trusted, new)
    except BaseException:
        # Back to the old binding: the blocks and the role may still hold the old id.
        with unit_of_work(settings) as session:
            external_ids_repo.release(session, link.id)
            if old is not None:
                external_ids_repo.claim(session, owner_id=link.owner_id, value=old, link_id=link.id)
        raise
    return Rotation(view_link(link), new, link.local, commands)


def _apply_rotation(
    settings: OrcaSettings,
    link: CloudLink,
    state: SandboxState | None,
    orca_account: str | None,
    trusted: list[str],
    new: str,
) -> tuple[str, ...]:
    """Trust ``new`` (the sandbox's role) and save it in the link's blocks; the stack
    commands to run on real AWS."""
    commands: tuple[str, ...] = ()
    if state is not None:
        trust_sandbox_external_ids(settings, state, [*trusted, new])
    elif orca_account is not None:
        commands = tuple(
            link_kit.cli_commands(
                region=link.region,
                stack_name=link_defaults.DEFAULT_STACK_NAME,
                external_id=new,
                orca_account_id=orca_account,
            )
        )
    with prefect_api(settings):
        credentials = load_block(OrcaLinkedCloudCredentials, link.block_document_name)
        credentials.external_id = SecretStr(new)
        save_block(credentials, link.block_document_name)
        try:
            queue = load_queue_block(link)
            queue.credentials = credentials
        except NotFoundError:
            queue = new_queue_block(settings, link.queue_url or "", credentials)
        save_block(queue, queue_block_name(link.block_document_name))
    LinkAccess.forget(link)
    return commands
