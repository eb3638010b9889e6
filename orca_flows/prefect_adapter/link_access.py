"""Reaching into a linked account: its credentials block as one refreshing client factory,
its queue block (how workers poll the link's queue) and its EC2 runner block (how runs are
sent to its instances)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from orca_blocks import OrcaEc2Runner, OrcaLinkedCloudCredentials, OrcaRunQueue
from orca_blocks.queue import MIN_VISIBILITY_SECONDS
from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.aws.sqs import FifoQueue
from orca_flows.db.models import CloudLink
from orca_flows.domain.s3_layout import user_prefix
from orca_flows.errors import NotFoundError
from orca_flows.prefect_adapter.blocks import load_block
from orca_flows.settings import OrcaSettings

__all__ = [
    "LinkAccess",
    "credentials_block_name",
    "load_queue_block",
    "load_runner_block",
    "new_queue_block",
    "new_runner_block",
    "queue_block_name",
    "runner_block_name",
]

_CACHE_SECONDS = 300.0
_CACHE: dict[tuple[int, str], tuple[float, LinkAccess]] = {}


def credentials_block_name() -> str:
    """A new name for the Prefect block document holding a link's credentials.

    Random rather than the row id: several Orca databases (staging, production, tests) may
    share one Prefect server, and their ids collide.
    """
    return f"orca-link-{uuid.uuid4().hex[:16]}"


def queue_block_name(credentials_block: str) -> str:
    """Name of the queue block document saved beside ``credentials_block``."""
    return credentials_block.replace("orca-link-", "orca-queue-", 1)


def runner_block_name(credentials_block: str) -> str:
    """Name of the EC2 runner block document saved beside ``credentials_block``."""
    return credentials_block.replace("orca-link-", "orca-runner-", 1)


def new_queue_block(
    settings: OrcaSettings, queue_url: str, credentials: OrcaLinkedCloudCredentials
) -> OrcaRunQueue:
    """A new link's queue block: the worker settings are its starting values.

    After that the block is the configuration of the link's queue (edited in Prefect's UI);
    the settings no longer matter for it, unless set explicitly on a worker. A visibility
    below the block's minimum (a test's, a worker's own business) is raised to it.
    """
    return OrcaRunQueue(
        queue_url=queue_url,
        visibility_timeout_seconds=max(settings.worker_visibility_seconds, MIN_VISIBILITY_SECONDS),
        wait_time_seconds=settings.worker_poll_seconds,
        credentials=credentials,
    )


def load_queue_block(link: CloudLink) -> OrcaRunQueue:
    """Load the queue block saved beside ``link``'s credentials block.

    Raises:
        NotFoundError: There is no such document (or it no longer validates).
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    return load_block(OrcaRunQueue, queue_block_name(link.block_document_name))


def new_runner_block(settings: OrcaSettings) -> OrcaEc2Runner:
    """A new link's EC2 runner block: the worker settings are its starting values.

    After that the block is the configuration of the link's SSM runs (edited in Prefect's
    UI), unless a worker has ``ORCA_SSM_DELIVERY_TIMEOUT_SECONDS`` set explicitly.
    """
    return OrcaEc2Runner(delivery_timeout_seconds=settings.ssm_delivery_timeout_seconds)


def load_runner_block(link: CloudLink) -> OrcaEc2Runner | None:
    """Load the EC2 runner block saved beside ``link``'s credentials block.

    Returns:
        The block; None when there is none (a link made before the block existed) or it
        no longer validates: the worker settings apply then.

    Raises:
        PrefectUnavailableError: The Prefect API cannot be reached.
    """
    try:
        return load_block(OrcaEc2Runner, runner_block_name(link.block_document_name))
    except NotFoundError:
        return None


@dataclass(frozen=True)
class LinkAccess:
    """Clients for one linked account, sharing one assumed-role session that refreshes itself.

    Attributes:
        link_id: The CloudLink's id.
        bucket: The link's Orca bucket.
        queue_url: The link's FIFO run queue.
        credentials: The link's credentials block (ExternalId stays inside it).
        factory: Builds clients on the block's refreshing session.
        runner: The link's EC2 runner block as read with the credentials; None when the
            link has none (the worker settings apply).
    """

    link_id: int
    bucket: str
    queue_url: str
    credentials: OrcaLinkedCloudCredentials
    factory: ClientFactory
    runner: OrcaEc2Runner | None = None

    @classmethod
    def for_link(
        cls,
        link: CloudLink,
        credentials: OrcaLinkedCloudCredentials,
        runner: OrcaEc2Runner | None = None,
    ) -> LinkAccess:
        """Access to ``link`` through its (loaded) credentials and EC2 runner blocks."""
        # The block's shared factory: one refreshing session per set of credentials.
        factory = credentials.client_factory()
        return cls(link.id, link.bucket or "", link.queue_url or "", credentials, factory, runner)

    @classmethod
    def load(cls, link: CloudLink) -> LinkAccess:
        """Load the link's credentials block from Prefect and build access from it.

        Cached per process for a few minutes: a block read, new clients and an AssumeRole
        cost ~0.4 s, which every submit from the web app or a schedule would otherwise pay.
        The session refreshes its own credentials; the short lifetime picks up a rotated
        ExternalId, a re-created link or an edited runner block.
        """
        key = (link.id, link.block_document_name)
        cached = _CACHE.get(key)
        if cached is not None and time.monotonic() - cached[0] < _CACHE_SECONDS:
            return cached[1]
        access = cls.for_link(
            link,
            load_block(OrcaLinkedCloudCredentials, link.block_document_name),
            load_runner_block(link),
        )
        _CACHE[key] = (time.monotonic(), access)
        return access

    @classmethod
    def reload(cls, link: CloudLink) -> LinkAccess:
        """Read the link's credentials and runner blocks now; the cached access if unchanged.

        For a long-lived process (the worker) that must notice `orca link update` or an
        edit in Prefect's UI (the blocks' contents change, their names do not) within one
        refresh: a changed credentials or runner block, bucket or queue gives new access,
        and the cache keeps that one.
        """
        credentials = load_block(OrcaLinkedCloudCredentials, link.block_document_name)
        runner = load_runner_block(link)
        key = (link.id, link.block_document_name)
        cached = _CACHE.get(key)
        wanted = _marker(link.bucket or "", link.queue_url or "", credentials, runner)
        if cached is not None and cached[1].marker == wanted:
            access = cached[1]
        else:
            access = cls.for_link(link, credentials, runner)
        _CACHE[key] = (time.monotonic(), access)
        return access

    @property
    def marker(self) -> str:
        """A digest of what this access was built from; it changes when the link changes."""
        return _marker(self.bucket, self.queue_url, self.credentials, self.runner)

    @staticmethod
    def forget(link: CloudLink) -> None:
        """Drop the cached access of ``link`` (its block changed or it is removed)."""
        _CACHE.pop((link.id, link.block_document_name), None)

    def client(self, service: str, **config: Any) -> Any:
        """A client in the linked account (standard retries, the link's endpoint)."""
        return self.factory.client(service, **config)

    def user_bucket(self, user_id: int) -> PrefixedBucket:
        """The link's bucket, confined to ``orca/<user id>/``."""
        return PrefixedBucket(self.client("s3"), self.bucket, user_prefix(user_id))

    def queue(self) -> FifoQueue:
        """The link's FIFO run queue."""
        return FifoQueue(self.client("sqs"), self.queue_url)


def _marker(
    bucket: str,
    queue_url: str,
    credentials: OrcaLinkedCloudCredentials,
    runner: OrcaEc2Runner | None,
) -> str:
    parts = [bucket, queue_url, _revealed(credentials), _revealed(runner)]
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _revealed(value: Any) -> Any:
    """A block's settings as plain data, secrets included (only ever hashed).

    Walks the fields itself: Prefect's ``model_dump(context={"include_secrets": True})``
    builds the block's JSON schema on every call (~0.5 s).
    """
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {name: _revealed(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {str(key): _revealed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_revealed(item) for item in value]
    return value
