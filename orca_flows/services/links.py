"""Cloud links: the kit, creating a link (row + block documents together), check, remove."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from prefect.blocks.system import Secret
from prefect_aws import AwsCredentials
from pydantic import SecretStr, ValidationError
from sqlalchemy.orm import Session

from orca_blocks import OrcaLinkedCloudCredentials, OrcaRunQueue
from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.sts import caller_identity
from orca_flows.db.models import CloudLink, Pipeline, User
from orca_flows.db.repositories import links as links_repo
from orca_flows.errors import (
    AlreadyExistsError,
    InUseError,
    InvalidInputError,
    NotFoundError,
    OrcaError,
    SandboxNotRunningError,
)
from orca_flows.aws import link_kit
from orca_flows.prefect_adapter.link_access import (
    LinkAccess,
    credentials_block_name,
    queue_block_name,
)
from orca_flows.prefect_adapter.blocks import delete_block, load_block, save_block
from orca_flows.sandbox_record import (
    SANDBOX_ACCESS_KEY,
    running_sandbox,
    sandbox_external_id,
)
from orca_flows.settings import OrcaSettings

__all__ = [
    "KitResult",
    "LINK_NAME_PATTERN",
    "create_link",
    "create_local_link",
    "describe",
    "generate_kit",
    "get_link",
    "link_access",
    "list_links",
    "remove_link",
    "update_external_id",
]

LINK_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
# Field names of the credentials block, as the user typed them on the command line.
_FIELD_NAMES = {"role_arn": "role_arn", "region_name": "region", "external_id": "external_id"}


@dataclass(frozen=True)
class KitResult:
    """The kit plus what Orca can predict about the link it will create."""

    kit: link_kit.LinkKit
    role_arn: str | None
    create_command: str
    external_id_saved: bool


def _pending_secret_name(owner: User) -> str:
    # By email, not row id: several Orca databases may share one Prefect server.
    return f"orca-kit-{hashlib.sha256(owner.email.encode()).hexdigest()[:16]}"


def _orca_account_id(settings: OrcaSettings) -> str:
    if settings.account_id:
        return settings.account_id
    try:
        return caller_identity(ClientFactory(boto3.Session(), settings.region).client("sts")).account
    except (BotoCoreError, ClientError) as error:
        raise InvalidInputError(
            "account",
            f"Orca could not learn its own AWS account id from STS ({error}); "
            "set ORCA_ACCOUNT_ID to the 12-digit account Orca's workers run in.",
        ) from error


def generate_kit(
    settings: OrcaSettings,
    *,
    owner: User | None,
    region: str,
    user_account_id: str | None = None,
) -> KitResult:
    """Make a link kit with a fresh ExternalId; with an owner, remember the ExternalId.

    The ExternalId is kept as a Prefect Secret block until `orca link create` uses it, so
    the user never has to copy it around (they may still pass ``--external-id``).

    Args:
        settings: Orca's settings (Orca's account id, the published template URL).
        owner: The acting user, if any.
        region: The user's AWS region.
        user_account_id: The user's account; lets the kit name the role ARN to link.
    """
    kit = link_kit.make_link_kit(
        orca_account_id=_orca_account_id(settings),
        region=region,
        template_url=settings.link_template_url,
    )
    role_arn = None
    if user_account_id is not None:
        if not re.fullmatch(r"\d{12}", user_account_id):
            raise InvalidInputError(
                "account", f"account {user_account_id!r} must be the 12-digit AWS account id."
            )
        role_arn = link_kit.role_arn_for(user_account_id, region)
    command = ["orca", "link", "create", "NAME", "--role-arn", role_arn or "ROLE_ARN"]
    command += ["--region", region]
    if owner is not None:
        save_block(Secret(value=kit.external_id), _pending_secret_name(owner))
    else:
        command += ["--external-id", kit.external_id]
    return KitResult(kit, role_arn, " ".join(command), owner is not None)


def _check_name(name: str) -> None:
    if not re.fullmatch(LINK_NAME_PATTERN, name):
        raise InvalidInputError(
            "name",
            f"link name {name!r} must be 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit.",
        )


def _block_error(error: ValidationError) -> InvalidInputError:
    first = error.errors()[0]
    field = _FIELD_NAMES.get(str(first["loc"][0]) if first["loc"] else "", "link")
    message = first["msg"].removeprefix("Value error, ")
    return InvalidInputError(field, message)


def _pending_external_id(owner: User) -> str:
    try:
        return load_block(Secret, _pending_secret_name(owner)).get()
    except NotFoundError:
        raise InvalidInputError(
            "external_id",
            "no ExternalId for this link: run `orca link kit` first (Orca remembers the "
            "ExternalId it generates) or pass --external-id.",
        ) from None


def _save_link(
    session: Session,
    owner: User,
    name: str,
    credentials: OrcaLinkedCloudCredentials,
    *,
    bucket: str,
    queue_url: str,
    local: bool,
) -> CloudLink:
    """Insert the row, then save its block documents; a failure undoes both.

    The row is flushed first (duplicate names fail before anything reaches Prefect); the
    caller's transaction rolls the row back if saving the blocks fails, and blocks saved
    before a failure are deleted here.
    """
    if links_repo.get_link_by_name(session, owner.id, name) is not None:
        raise AlreadyExistsError("link", name, "Choose another name or `orca link remove` it.")
    link = links_repo.create_link(
        session,
        owner_id=owner.id,
        name=name,
        region=credentials.region_name,
        role_arn=credentials.role_arn,
        block_document_name=credentials_block_name(),
    )
    link.account_id = credentials.account_id
    link.bucket = bucket
    link.queue_url = queue_url
    link.local = local
    session.flush()
    try:
        save_block(credentials, link.block_document_name)
        queue = OrcaRunQueue(queue_url=queue_url, credentials=credentials)
        save_block(queue, queue_block_name(link.block_document_name))
    except BaseException:
        _delete_blocks(link.block_document_name)
        raise
    return link


def _delete_blocks(credentials_block: str) -> None:
    for block_type, name in (
        (OrcaRunQueue, queue_block_name(credentials_block)),
        (OrcaLinkedCloudCredentials, credentials_block),
    ):
        try:
            delete_block(block_type, name)
        except OrcaError:
            pass  # Prefect is down: nothing more to undo from here


def _queue_url(region: str, account_id: str, queue_name: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account_id}/{queue_name}"


def create_link(
    session: Session,
    settings: OrcaSettings,
    owner: User,
    name: str,
    *,
    role_arn: str,
    region: str | None = None,
    external_id: str | None = None,
    bucket: str | None = None,
    queue_name: str = link_kit.DEFAULT_QUEUE_NAME,
) -> CloudLink:
    """Link an AWS account through the role the kit created there.

    Args:
        session: The caller's session (this function flushes; the caller commits).
        settings: Orca's settings.
        owner: The acting user.
        name: The link's name, unique per user.
        role_arn: The role's ARN (the kit's ``RoleArn`` output).
        region: The account's region for Orca (default ORCA_REGION).
        external_id: The ExternalId; default the one `orca link kit` remembered.
        bucket: The Orca bucket; default the kit's ``orca-<account>-<region>``.
        queue_name: The FIFO run queue's name.

    Raises:
        InvalidInputError: Bad name, ARN, region or ExternalId.
        AlreadyExistsError: The user has a link with this name.
        PrefectUnavailableError: The block documents could not be saved.
    """
    _check_name(name)
    region = region or settings.region
    external_id = link_kit.validate_external_id(
        external_id if external_id is not None else _pending_external_id(owner)
    )
    try:
        credentials = OrcaLinkedCloudCredentials(
            role_arn=role_arn,
            external_id=SecretStr(external_id),
            region_name=region,
            role_session_name=f"orca-{owner.id}-{name}"[:64],
        )
    except ValidationError as error:
        raise _block_error(error) from error
    account = credentials.account_id
    link = _save_link(
        session,
        owner,
        name,
        credentials,
        bucket=bucket or link_kit.default_bucket_name(account, region),
        queue_url=_queue_url(region, account, queue_name),
        local=False,
    )
    try:
        delete_block(Secret, _pending_secret_name(owner))
    except OrcaError:
        pass  # a leftover pending ExternalId is harmless; the next kit replaces it
    return link


def create_local_link(
    session: Session, settings: OrcaSettings, owner: User, name: str
) -> CloudLink:
    """Link the local sandbox's account (the one `orca local up` deployed the kit in).

    Raises:
        SandboxNotRunningError: The sandbox is not running.
    """
    _check_name(name)
    state = running_sandbox(settings)
    if state is None:
        raise SandboxNotRunningError()
    credentials = OrcaLinkedCloudCredentials(
        role_arn=state.role_arn,
        external_id=SecretStr(sandbox_external_id(settings)),
        region_name=state.region,
        role_session_name=f"orca-{owner.id}-{name}"[:64],
        endpoint_url=state.endpoint_url,
        # Orca's own side on the emulator: fixed fake keys, never real credentials.
        orca_credentials=AwsCredentials(
            aws_access_key_id=SANDBOX_ACCESS_KEY,
            aws_secret_access_key=SANDBOX_ACCESS_KEY,
            region_name=state.region,
        ),
    )
    return _save_link(
        session,
        owner,
        name,
        credentials,
        bucket=state.bucket,
        queue_url=_queue_url(state.region, state.account_id, state.queue),
        local=True,
    )


def get_link(session: Session, owner: User, name: str) -> CloudLink:
    """The owner's link ``name`` (another user's link looks like no link).

    Raises:
        NotFoundError: No such link.
    """
    link = links_repo.get_link_by_name(session, owner.id, name)
    if link is None:
        raise NotFoundError("link", name, "See `orca link list`.")
    return link


def list_links(session: Session, owner: User) -> Sequence[CloudLink]:
    """The owner's links by name."""
    return links_repo.list_links(session, owner.id)


def remove_link(session: Session, owner: User, name: str) -> None:
    """Remove a link and its block documents; refused while a pipeline uses it.

    The bucket, queue and role in the user's account stay: delete the stack to remove them.
    """
    link = get_link(session, owner, name)
    users = sorted(p.name for p in session.query(Pipeline).filter(Pipeline.link_id == link.id))
    if users:
        raise InUseError(
            f"link {name!r} is used by pipeline(s) {', '.join(users)}; remove them first "
            "(`orca pipeline remove NAME`)."
        )
    block = link.block_document_name
    LinkAccess.forget(link)
    session.delete(link)
    session.flush()
    _delete_blocks(block)


def link_access(link: CloudLink) -> LinkAccess:
    """Clients into the link's account (loads its credentials block)."""
    return LinkAccess.load(link)


def describe(link: CloudLink) -> dict[str, object]:
    """The link as shown by `list` / `--json` (never the ExternalId)."""
    return {
        "name": link.name,
        "provider": link.provider,
        "local": link.local,
        "role_arn": link.role_arn,
        "account_id": link.account_id,
        "region": link.region,
        "bucket": link.bucket,
        "queue_url": link.queue_url,
        "block_document": link.block_document_name,
        "last_check_status": link.last_check_status,
        "last_check_at": link.last_check_at.isoformat() if link.last_check_at else None,
        "last_check": json.loads(link.last_check_detail) if link.last_check_detail else None,
    }


def update_external_id(session: Session, owner: User, name: str, external_id: str) -> CloudLink:
    """Rotate a link's ExternalId (after updating the stack's parameter with the same value).

    Raises:
        InvalidInputError: The ExternalId is malformed.
        NotFoundError: No such link.
    """
    link = get_link(session, owner, name)
    link_kit.validate_external_id(external_id)
    credentials = load_block(OrcaLinkedCloudCredentials, link.block_document_name)
    credentials.external_id = SecretStr(external_id)
    save_block(credentials, link.block_document_name)
    save_block(
        OrcaRunQueue(queue_url=link.queue_url or "", credentials=credentials),
        queue_block_name(link.block_document_name),
    )
    LinkAccess.forget(link)
    return link
