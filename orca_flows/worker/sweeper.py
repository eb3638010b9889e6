"""The worker's sweeper: the head run of every key is carried by a live message.

The database is the truth and a queue message is only a wake-up. A run can be left
without a live message in several ways: parked behind a run whose worker died, its
submitter died between commit and send, SQS dropped its message (retention, the
dead-letter queue, the 12-hour visibility cap of a long run whose worker died). The
sweeper finds each shape in the database and re-sends a wake-up message with a fresh
deduplication id; a duplicate is harmless, because every claim is a compare-and-set
(``claims.claim_run``): one worker executes or resumes the run, other messages are
hidden while it runs and dropped once it has finished.
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from orca_flows.db.models import Run
from orca_flows.errors import OrcaError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.runs import send_run_message
from orca_flows.settings import OrcaSettings
from orca_flows.worker import claims

__all__ = ["Sweeper"]

logger = get_logger(__name__)


class Sweeper:
    """Sends the wake-up messages runs lack.

    Args:
        settings: Orca's settings (``rewake_after_seconds``).
        access_for: The access of a link by id (the worker's, refreshed with its links).
    """

    def __init__(self, settings: OrcaSettings, access_for: Callable[[int], LinkAccess]) -> None:
        self.settings = settings
        self.access_for = access_for

    def wake(self, ordering_key: str, *, rewake: bool = False) -> None:
        """Send the message of the key's next run if it is parked (or was never sent).

        Three steps, no transaction open during the send: read the parked run (unit 1),
        send its message, record the message id with a compare-and-set on "still queued
        and the message id read in step 1" (unit 2). Two wakers (this worker's and
        another's, or a sweep and a finishing run) may both send: the second record is
        refused, and the extra message is harmless, because the claim's compare-and-set
        lets one worker execute the run and the other message is dropped once the run
        has finished. A crash before the record leaves the run as it was: the sweeper
        sends again. ``rewake``: also re-send for a head run whose message was due long
        ago and never received (see ``claims.parked_run``).
        """
        parked = claims.parked_run(self.settings, ordering_key, rewake=rewake)
        if parked is None:
            return
        run = parked.run
        seen = run.sqs_message_id
        message_id = self._send(parked.link_id, run)
        if message_id is None:
            return
        if claims.record_message(self.settings, run.id, message_id, seen_message_id=seen):
            why = "parked or never sent" if seen is None else f"message {seen} never received"
            logger.info(
                "sent the message of run %s (seq %s of %s; %s)",
                run.id,
                run.sequence,
                ordering_key,
                why,
            )
        else:
            logger.info(
                "sent the message of run %s, which meanwhile has one or was claimed; "
                "the claim drops the extra message",
                run.id,
            )

    def _send(self, link_id: int, run: Run) -> str | None:
        """Send a fresh wake-up message for ``run``; ``None`` (logged) when AWS refused."""
        try:
            return send_run_message(self.access_for(link_id), run, resend=True)
        except (BotoCoreError, ClientError, OrcaError) as error:
            logger.warning("could not send run %s: %s; the sweeper retries", run.id, error)
            return None

    def rewake_leased(self, link_ids: list[int]) -> None:
        """Re-send the message of every running or cancelling run whose lease lapsed long
        ago and whose message never came back: a worker receiving it takes the lease over
        and resumes the run (it never starts a second execution)."""
        for leased in claims.leased_runs_to_rewake(self.settings, link_ids):
            run = leased.run
            message_id = self._send(leased.link_id, run)
            if message_id is None:
                continue
            if claims.record_rewake(self.settings, leased, message_id):
                logger.warning(
                    "run %s is %s but its lease lapsed at %s and its message is gone: "
                    "sent a new one so that a worker resumes it",
                    run.id,
                    run.state,
                    run.lease_expires_at,
                )

    def sweep(self, link_ids: list[int]) -> None:
        """Wake every stuck shape on the links ``link_ids``: keys whose next run has no
        message or a message never received, and leased runs whose message is gone."""
        for key in claims.keys_to_wake(self.settings, link_ids, rewake=True):
            self.wake(key, rewake=True)
        self.rewake_leased(link_ids)
