"""Links a worker cannot reach: backed off exponentially, reported once per back-off.

A link whose queue cannot be polled (AssumeRole refused after a rotation or a revoked
trust policy, the queue deleted, a wrong region, no network) must never slow the other
links down: each link has its own poller, and a failing one waits out a back-off that
doubles with each failure (up to ``MAX_BACKOFF_S``) instead of retrying every few
seconds. Each failure is reported once: one line in the worker's log, and the link's
last check (``last_check_status``/``last_check_detail``, shown by `orca link list` and
on Cloud Setup) becomes a failed ``worker`` step with the reason and the fix. The first
successful receive afterwards reports the recovery the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime

from botocore.exceptions import ClientError
from sqlalchemy.exc import SQLAlchemyError

from orca_flows.db.base import utcnow
from orca_flows.db.repositories import links as links_repo
from orca_flows.domain.states import CheckStatus
from orca_flows.domain.views import CheckStep
from orca_flows.logs import get_logger
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["FIRST_BACKOFF_S", "MAX_BACKOFF_S", "WORKER_STEP", "LinkHealth", "LinkRef"]

logger = get_logger(__name__)

FIRST_BACKOFF_S = 2.0
MAX_BACKOFF_S = 300.0
WORKER_STEP = "worker"  # the name of the check step a worker writes


@dataclass(frozen=True)
class LinkRef:
    """What a poller knows of its link: enough to name it and to record on it.

    Attributes:
        id: The link's id.
        name: The owner's name for it.
        block_document_name: Its credentials block (the record is refused once it changed).
        queue_url: The queue polled.
    """

    id: int
    name: str
    block_document_name: str
    queue_url: str


def _reason(error: BaseException) -> str:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Error')}: {info.get('Message', '')}".strip()
    return str(error) or type(error).__name__


class LinkHealth:
    """Failure counts of the links one worker serves.

    Args:
        settings: Orca's settings (the database the reports go to).
        first_delay: The first back-off, in seconds; each failure doubles it.
        max_delay: The longest back-off.
    """

    def __init__(
        self,
        settings: OrcaSettings,
        *,
        first_delay: float = FIRST_BACKOFF_S,
        max_delay: float = MAX_BACKOFF_S,
    ) -> None:
        self.settings = settings
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._failures: dict[int, int] = {}
        # Per failing link: the check outcome stored before its first failure (restored on
        # recovery), and the worker's own report last written over it.
        self._before: dict[int, tuple[CheckStatus | None, datetime | None, str | None]] = {}
        self._written: dict[int, str] = {}

    def failing(self, link_id: int) -> bool:
        """Whether the link's last poll failed."""
        return link_id in self._failures

    def failed(self, link: LinkRef, error: BaseException) -> float:
        """Count a failed poll of ``link``, report it, and return the back-off in seconds.

        Blocking (it writes the report to the database): call it from a thread.
        """
        failures = self._failures.get(link.id, 0) + 1
        self._failures[link.id] = failures
        delay = min(self.first_delay * 2 ** (failures - 1), self.max_delay)
        reason = _reason(error)
        logger.warning(
            "link %s (id %s) cannot be served: %s; its runs wait, other links are served; "
            "next try in %.3g s (failure %s)",
            link.name,
            link.id,
            reason,
            delay,
            failures,
        )
        step = CheckStep(
            WORKER_STEP,
            CheckStatus.FAILED,
            f"the worker cannot receive from {link.queue_url}: {reason} (failure {failures}; "
            f"next try in {delay:.3g} s)",
            "Run `orca link check "
            f"{link.name}` to see which step fails and fix it (the role's trust policy and "
            "ExternalId, the queue, the region); the worker picks the link up again by itself.",
        )
        if failures == 1:
            self._before[link.id] = self._stored(link)
        self._record(link, CheckStatus.FAILED, step)
        return delay

    async def back_off(self, link: LinkRef, error: BaseException, retired: asyncio.Event) -> None:
        """Report a failed poll of ``link`` and wait out its back-off (or until ``retired``:
        the link was removed or changed)."""
        delay = await asyncio.to_thread(self.failed, link, error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(retired.wait(), timeout=delay)

    def recovered(self, link: LinkRef) -> None:
        """Report that ``link`` is served again after failures (no-op if it was not failing).

        Blocking (it writes the report to the database): call it from a thread.
        """
        failures = self._failures.pop(link.id, None)
        if failures is None:
            return
        logger.info(
            "link %s (id %s) is served again after %s failure(s)", link.name, link.id, failures
        )
        # Put back what the link showed before (its last `orca link check`, which may
        # have failed for another step), unless a check was stored since: "served again"
        # says nothing about the bucket or the SSM targets.
        status, at, detail = self._before.pop(link.id, (None, None, None))
        written = self._written.pop(link.id, None)
        if written is not None:
            self._store(link, status, at, detail, only_if_detail=written)

    def forget(self, link_id: int) -> None:
        """Drop a removed link's count."""
        self._failures.pop(link_id, None)
        self._before.pop(link_id, None)
        self._written.pop(link_id, None)

    def _stored(self, link: LinkRef) -> tuple[CheckStatus | None, datetime | None, str | None]:
        try:
            with unit_of_work(self.settings) as session:
                row = links_repo.get_link_by_id(session, link.id)
                if row is None:
                    return None, None, None
                return row.last_check_status, row.last_check_at, row.last_check_detail
        except SQLAlchemyError:
            return None, None, None

    def _record(self, link: LinkRef, status: CheckStatus, step: CheckStep) -> None:
        detail = json.dumps([asdict(step)])
        if self._store(link, status, utcnow(), detail):
            self._written[link.id] = detail

    def _store(
        self,
        link: LinkRef,
        status: CheckStatus | None,
        at: datetime | None,
        detail: str | None,
        *,
        only_if_detail: str | None = None,
    ) -> bool:
        try:
            with unit_of_work(self.settings) as session:
                return links_repo.record_check(
                    session,
                    link.id,
                    link.block_document_name,
                    status=status,
                    at=at,
                    detail=detail,
                    only_if_detail=only_if_detail,
                )
        except SQLAlchemyError as error:  # the log line above still reports it
            logger.warning("link %s (id %s): report not stored: %s", link.name, link.id, error)
            return False
