"""Creating a link: a row naming it and three Prefect block documents, never half-made.

No Prefect or AWS call happens while a unit of work is open, and creating a link needs
both (a row naming the link; block documents holding its credentials, its queue and its
EC2 runner settings), so it goes in three steps:

1. **Reserve** (unit 1): the name must be free; a row is inserted with ``pending_since``
   set and a fresh random block-document name, and the link's ExternalId is claimed for
   it: one Orca issued to this user that no other link uses (a compare-and-set, so two
   links never share one). A pending row is invisible to every other use case (lists,
   lookups, pipelines, the worker), so nothing can use a half-made link.
2. **Save** (no unit): the three block documents are saved under the reserved name.
3. **Complete** (unit 2): ``pending_since`` is cleared, only if the row is still this
   attempt's (same id and block name).

A failure in step 2 or 3 (Prefect down, Ctrl-C) deletes the blocks this attempt saved and
its pending row, so nothing half-written remains; deleting the row frees its ExternalId
(the foreign key's ``ON DELETE SET NULL``), so a failed create leaves it unused. A crash
between the steps (the process killed) leaves a pending row and perhaps its block
documents: once the reservation is
older than ``PENDING_TIMEOUT``, a `link create` of the same name takes the row over and
deletes those blocks first; before that it is refused as "being created right now"
(saving takes seconds, so only a crashed attempt's reservation grows that old).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from prefect_aws import AwsCredentials
from pydantic import SecretStr, ValidationError
from sqlalchemy.exc import IntegrityError

from orca_blocks import OrcaLinkedCloudCredentials
from orca_flows.aws import link_defaults
from orca_flows.aws.link_kit import new_external_id
from orca_flows.db.base import utcnow
from orca_flows.db.repositories import external_ids as external_ids_repo
from orca_flows.db.repositories import links as links_repo
from orca_flows.domain import rules
from orca_flows.domain.actor import Actor
from orca_flows.domain.regions import sqs_queue_url
from orca_flows.domain.views import LinkView
from orca_flows.errors import (
    AlreadyExistsError,
    ExternalIdNotIssuedError,
    InvalidInputError,
    SandboxNotRunningError,
)
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.blocks import save_block
from orca_flows.prefect_adapter.link_access import (
    credentials_block_name,
    new_queue_block,
    new_runner_block,
    queue_block_name,
    runner_block_name,
)
from orca_flows.sandbox_record import SANDBOX_ACCESS_KEY, SandboxState, running_sandbox
from orca_flows.services.link_kits import NOT_ISSUED, unused_external_id
from orca_flows.services.links import delete_link_blocks, view_link
from orca_flows.services.sandbox_trust import trust_sandbox_external_ids
from orca_flows.services.unit_of_work import acting_user, unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "LINK_NAME_PATTERN",
    "PENDING_TIMEOUT",
    "create_link",
    "create_local_link",
    "sandbox_available",
]

logger = get_logger(__name__)

LINK_NAME_PATTERN = rules.RESOURCE_NAME_PATTERN
# How old a reservation must be before a new `link create` of its name replaces it:
# saving three block documents takes seconds, so an older one is a crashed attempt's.
PENDING_TIMEOUT = timedelta(minutes=10)
# Field names of the credentials block, as the user typed them on the command line.
_FIELD_NAMES = {"role_arn": "role_arn", "region_name": "region", "external_id": "external_id"}


def _check_name(name: str) -> None:
    rules.check_resource_name("link", name)


def _block_error(error: ValidationError) -> InvalidInputError:
    first = error.errors()[0]
    field = _FIELD_NAMES.get(str(first["loc"][0]) if first["loc"] else "", "link")
    message = first["msg"].removeprefix("Value error, ")
    return InvalidInputError(field, message)


@dataclass(frozen=True)
class _Reservation:
    link_id: int
    block: str
    stale_block: str | None  # a crashed attempt's blocks, to delete before saving
    issued: str | None  # an ExternalId issued for this attempt, withdrawn if it fails


def _reserve(
    settings: OrcaSettings,
    actor: Actor,
    name: str,
    credentials: OrcaLinkedCloudCredentials,
    *,
    external_id: str,
    issue: bool,
    bucket: str,
    queue_url: str,
    local: bool,
) -> _Reservation:
    """Step 1: insert the pending row (or take over a crashed attempt's), claim the ExternalId.

    With ``issue`` the ExternalId is new and issued to the actor in the same unit, so a
    refused reservation issues nothing.
    """
    taken = AlreadyExistsError("link", name, "Choose another name or `orca link remove` it.")
    block = credentials_block_name()
    now = utcnow()
    try:
        with unit_of_work(settings) as session:
            owner = acting_user(session, actor)
            existing = links_repo.get_link_by_name(session, owner.id, name, include_pending=True)
            stale_block = None
            if existing is not None:
                if existing.pending_since is None:
                    raise taken
                if now - existing.pending_since < PENDING_TIMEOUT:
                    free_at = (existing.pending_since + PENDING_TIMEOUT).strftime("%H:%M UTC")
                    raise AlreadyExistsError(
                        "link",
                        name,
                        "It is being created right now; if that attempt was interrupted, "
                        f"create it again after {free_at}.",
                    )
                stale_block = existing.block_document_name
                if not links_repo.remove_stale_pending_link(session, existing):
                    raise taken  # another retry took it over first
            link = links_repo.create_link(
                session,
                owner_id=owner.id,
                name=name,
                region=credentials.region_name,
                role_arn=credentials.role_arn,
                account_id=credentials.account_id,
                bucket=bucket,
                queue_url=queue_url,
                local=local,
                block_document_name=block,
                pending_since=now,
            )
            if issue:
                external_ids_repo.issue(session, owner.id, external_id)
            if not external_ids_repo.claim(
                session, owner_id=owner.id, value=external_id, link_id=link.id
            ):
                raise ExternalIdNotIssuedError(NOT_ISSUED)  # rolls the reservation back
            return _Reservation(link.id, block, stale_block, external_id if issue else None)
    except IntegrityError as error:  # a concurrent create won the unique constraint
        raise taken from error


def _save_link(
    settings: OrcaSettings,
    actor: Actor,
    name: str,
    credentials: OrcaLinkedCloudCredentials,
    *,
    bucket: str,
    queue_url: str,
    local: bool,
    sandbox: SandboxState | None = None,
) -> LinkView:
    """Reserve the name, save the block documents, complete the row (module docstring).

    Must run inside ``prefect_api``. On any failure after the reservation, this attempt's
    blocks and pending row are deleted (and an ExternalId issued for it withdrawn) before
    the error propagates. With ``sandbox``, a new ExternalId is issued and the sandbox's
    role made to trust it (after the reservation, before the blocks).
    """
    reservation = _reserve(
        settings,
        actor,
        name,
        credentials,
        external_id=credentials.external_id.get_secret_value(),
        issue=sandbox is not None,
        bucket=bucket,
        queue_url=queue_url,
        local=local,
    )
    if reservation.stale_block is not None:
        left = delete_link_blocks(reservation.stale_block)
        logger.info("link %r: replaced the reservation of an interrupted creation", name)
        if left:
            logger.warning("link %r: block documents left in Prefect: %s", name, ", ".join(left))
    block = reservation.block
    try:
        if sandbox is not None:
            with unit_of_work(settings) as session:  # this attempt's pending link included
                trusted = list(external_ids_repo.values_of_local_links(session))
            trust_sandbox_external_ids(settings, sandbox, trusted)
        save_block(credentials, block)
        save_block(new_queue_block(settings, queue_url, credentials), queue_block_name(block))
        save_block(new_runner_block(settings), runner_block_name(block))
        with unit_of_work(settings) as session:
            link = links_repo.mark_link_ready(session, reservation.link_id, block)
            if link is None:
                raise AlreadyExistsError(
                    "link", name, "Another `link create` of this name replaced this one."
                )
            return view_link(link)
    except BaseException:  # Ctrl-C too: leave nothing half-made
        _undo(settings, name, reservation)
        raise


def _undo(settings: OrcaSettings, name: str, reservation: _Reservation) -> None:
    """Delete a failed attempt's blocks, then its pending row (best effort, logged)."""
    left = delete_link_blocks(reservation.block)
    if left:
        logger.warning(
            "link %r not created; block documents left in Prefect: %s", name, ", ".join(left)
        )
    try:
        with unit_of_work(settings) as session:
            links_repo.delete_pending_link(session, reservation.link_id, reservation.block)
            if reservation.issued is not None:
                external_ids_repo.withdraw(session, reservation.issued)
    except Exception:  # noqa: BLE001 - the original error matters more; a retry cleans up
        logger.warning(
            "link %r not created; its reservation stays until a `link create` of the same "
            "name after %s replaces it",
            name,
            PENDING_TIMEOUT,
            exc_info=True,
        )


def _queue_url(region: str, account_id: str, queue_name: str) -> str:
    return sqs_queue_url(region, account_id, queue_name)


def create_link(
    settings: OrcaSettings,
    actor: Actor,
    name: str,
    *,
    role_arn: str,
    region: str | None = None,
    external_id: str | None = None,
    bucket: str | None = None,
    queue_name: str = link_defaults.DEFAULT_QUEUE_NAME,
) -> LinkView:
    """Link an AWS account through the role the kit created there.

    Reserve, save, complete: see the module docstring. The ExternalId must be one Orca
    issued to the actor (`orca link kit`) that no other link uses; the reservation claims it.

    Args:
        settings: Orca's settings.
        actor: The acting user.
        name: The link's name, unique per user.
        role_arn: The role's ARN (the kit's ``RoleArn`` output).
        region: The account's region for Orca (default ORCA_REGION).
        external_id: The ExternalId; default the newest unused one issued to the actor.
        bucket: The Orca bucket; default the kit's ``orca-<account>-<region>``.
        queue_name: The FIFO run queue's name.

    Raises:
        InvalidInputError: Bad name, ARN, region or ExternalId.
        ExternalIdNotIssuedError: The ExternalId was not issued to the actor, another link
            uses it, or none was given and none is waiting.
        AlreadyExistsError: The user has a link with this name (or one being created).
        PrefectUnavailableError: The block documents could not be saved.
    """
    _check_name(name)
    region = region or settings.region
    # The role and region first: a typo there is reported before the ExternalId is looked at.
    rules.check_region_in_role_partition(region, rules.parse_role_arn(role_arn))
    external_id = unused_external_id(settings, actor, external_id)
    with prefect_api(settings):
        try:
            credentials = OrcaLinkedCloudCredentials(
                role_arn=role_arn,
                external_id=SecretStr(external_id),
                region_name=region,
                role_session_name=f"orca-{actor.user_id}-{name}"[:64],
            )
        except ValidationError as error:
            raise _block_error(error) from error
        account = credentials.account_id
        view = _save_link(
            settings,
            actor,
            name,
            credentials,
            bucket=bucket or link_defaults.default_bucket_name(account, region),
            queue_url=_queue_url(region, account, queue_name),
            local=False,
        )
    return view


def sandbox_available(settings: OrcaSettings) -> bool:
    """Whether the local sandbox `orca local up` started is running (asks its emulator)."""
    return running_sandbox(settings) is not None


def create_local_link(settings: OrcaSettings, actor: Actor, name: str) -> LinkView:
    """Link the local sandbox's account (the one `orca local up` deployed the kit in).

    Like a user of real AWS, the link uses an ExternalId issued to the actor: a fresh one
    is issued and claimed in the reservation (a refused one issues nothing), the sandbox's
    role is made to trust it (as the user would update their stack), then save and
    complete: see the module docstring.

    Raises:
        InvalidInputError: Bad name.
        AlreadyExistsError: The user has a link with this name (or one being created).
        SandboxNotRunningError: The sandbox is not running.
        SandboxError: The sandbox's role could not be made to trust the ExternalId.
        PrefectUnavailableError: The block documents could not be saved.
    """
    _check_name(name)
    state = running_sandbox(settings)
    if state is None:
        raise SandboxNotRunningError()
    credentials = OrcaLinkedCloudCredentials(
        role_arn=state.role_arn,
        external_id=SecretStr(new_external_id()),
        region_name=state.region,
        role_session_name=f"orca-{actor.user_id}-{name}"[:64],
        endpoint_url=state.endpoint_url,
        # Orca's own side on the emulator: fixed fake keys, never real credentials.
        orca_credentials=AwsCredentials(
            aws_access_key_id=SANDBOX_ACCESS_KEY,
            aws_secret_access_key=SecretStr(SANDBOX_ACCESS_KEY),
            region_name=state.region,
        ),
    )
    with prefect_api(settings):
        return _save_link(
            settings,
            actor,
            name,
            credentials,
            bucket=state.bucket,
            queue_url=_queue_url(state.region, state.account_id, state.queue),
            local=True,
            sandbox=state,
        )
