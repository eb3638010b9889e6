"""The worker loop: long-poll each linked queue, claim behind the fence, run as flows."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from prefect import tags

from orca_flows.aws.sqs import FifoQueue, QueueMessage
from orca_flows.db.engine import session_scope
from orca_flows.db.models import CloudLink, Pipeline, Run
from orca_flows.errors import OrcaError
from orca_flows.worker import claims as dispatch
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.runs import send_run_message
from orca_flows.settings import OrcaSettings
from orca_flows.worker.execution import _CONTEXTS, RunContext, execute_run

__all__ = ["Worker", "WorkerOptions"]

logger = logging.getLogger("orca.worker")
_LINK_REFRESH_S = 30.0
_SWEEP_EVERY_S = 30.0


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker behaves (the `orca worker` options)."""

    links: tuple[str, ...] = ()
    concurrency: int = 4
    max_runs: int | None = None
    idle_exit: float | None = None


@dataclass
class _Active:
    queue: FifoQueue
    receipt_handle: str
    task: asyncio.Task[None] | None = None


@dataclass
class _Stats:
    finished: int = 0
    last_activity: float = field(default_factory=time.monotonic)


class Worker:
    """Serves the queues of all links (or those named in ``options.links``).

    Args:
        settings: Orca's settings (database, lease and visibility timings).
        options: Concurrency and exit conditions.
    """

    def __init__(self, settings: OrcaSettings, options: WorkerOptions) -> None:
        self.settings = settings
        self.options = options
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._capacity = asyncio.Condition()
        self._in_flight = 0
        self._active: dict[str, _Active] = {}
        self._access: dict[int, LinkAccess] = {}
        self._queues: dict[str, int] = {}  # queue url -> a link id whose access polls it
        self._stop = asyncio.Event()
        self._stats = _Stats()

    # --- links and queues -------------------------------------------------------------

    def _load_links(self) -> list[CloudLink]:
        with session_scope(self.settings.effective_database_url) as session:
            query = session.query(CloudLink)
            if self.options.links:
                query = query.filter(CloudLink.name.in_(self.options.links))
            return list(query.order_by(CloudLink.id))

    def access_for(self, link_id: int) -> LinkAccess:
        """The (cached) access of a link: one refreshing session per link per worker."""
        if link_id not in self._access:
            with session_scope(self.settings.effective_database_url) as session:
                link = session.get(CloudLink, link_id)
                assert link is not None
                self._access[link_id] = LinkAccess.load(link)
        return self._access[link_id]

    async def _refresh_queues(self) -> None:
        links = await asyncio.to_thread(self._load_links)
        for link in links:
            if link.queue_url and link.queue_url not in self._queues:
                try:
                    await asyncio.to_thread(self.access_for, link.id)
                except OrcaError as error:
                    logger.error("link %s (id %s) unusable: %s", link.name, link.id, error)
                    continue
                self._queues[link.queue_url] = link.id
                logger.info("serving queue %s (link %s)", link.queue_url, link.name)

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> int:
        """Work until stopped (SIGTERM/SIGINT), ``max_runs`` reached or idle too long.

        Returns:
            How many runs this worker finished.
        """
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        pollers: dict[str, asyncio.Task[None]] = {}
        next_refresh = next_sweep = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_refresh:
                    await self._refresh_queues()
                    next_refresh = now + _LINK_REFRESH_S
                    for url, link_id in self._queues.items():
                        if url not in pollers:
                            pollers[url] = asyncio.create_task(self._poll(url, link_id))
                if now >= next_sweep:
                    await asyncio.to_thread(self._sweep)
                    next_sweep = now + _SWEEP_EVERY_S
                if self._done():
                    break
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=0.5)
                except TimeoutError:
                    pass
        finally:
            for task in pollers.values():
                task.cancel()
            await self._release_all()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        return self._stats.finished

    def _done(self) -> bool:
        if self.options.max_runs is not None and self._stats.finished >= self.options.max_runs:
            return not self._active
        idle = self.options.idle_exit
        if idle is not None and not self._active:
            return time.monotonic() - self._stats.last_activity >= idle
        return False

    async def _poll(self, url: str, link_id: int) -> None:
        queue = FifoQueue(self.access_for(link_id).client("sqs"), url)
        while not self._stop.is_set():
            async with self._capacity:
                await self._capacity.wait_for(lambda: self._in_flight < self.options.concurrency)
                # Reserve the slots before asking: pollers of several queues never overshoot.
                wanted = min(10, self.options.concurrency - self._in_flight)
                self._in_flight += wanted
            try:
                messages = await asyncio.to_thread(
                    queue.receive,
                    max_messages=wanted,
                    wait_seconds=self.settings.worker_poll_seconds,
                    visibility_timeout=self.settings.worker_visibility_seconds,
                )
            except (BotoCoreError, ClientError) as error:
                messages = []
                logger.warning("receive on %s failed (%s); retrying", url, error)
                await asyncio.sleep(2)
            await self._free(wanted - len(messages))
            if messages:
                self._stats.last_activity = time.monotonic()
            for message in messages:
                asyncio.create_task(self._handle(queue, message))

    async def _free(self, slots: int) -> None:
        async with self._capacity:
            self._in_flight -= slots
            self._capacity.notify_all()

    # --- one message --------------------------------------------------------------------

    async def _handle(self, queue: FifoQueue, message: QueueMessage) -> None:
        try:
            await self._dispatch(queue, message)
        except Exception:  # a bug must not kill the worker; the message comes back
            logger.exception("message %s: unexpected error", message.message_id)
        finally:
            self._stats.last_activity = time.monotonic()
            await self._free(1)

    async def _dispatch(self, queue: FifoQueue, message: QueueMessage) -> None:
        try:
            run_id = json.loads(message.body)["run_id"]
        except (ValueError, KeyError, TypeError):
            # Not a run (e.g. a `link check` probe that outlived its check): nothing to do.
            await asyncio.to_thread(queue.delete, message.receipt_handle)
            return
        if run_id in self._active:
            # Our own run came back (a late heartbeat): keep the newest receipt.
            self._active[run_id].receipt_handle = message.receipt_handle
            return
        claim = await asyncio.to_thread(dispatch.claim_run, self.settings, run_id, self.worker_id)
        logger.debug("run %s message %s: %s %s", run_id, message.message_id, claim.action, claim.detail)
        if claim.action == "drop":
            await asyncio.to_thread(queue.delete, message.receipt_handle)
        elif claim.action == "park":
            await asyncio.to_thread(queue.delete, message.receipt_handle)
            # The blocker may have finished between our check and the park: look again.
            await asyncio.to_thread(self._wake, claim.ordering_key)
        elif claim.action == "busy":
            await asyncio.to_thread(queue.change_visibility, message.receipt_handle, claim.delay)
        else:
            await self._execute(queue, message, run_id, resume=claim.action == "resume")

    async def _execute(self, queue: FifoQueue, message: QueueMessage, run_id: str, *, resume: bool) -> None:
        active = _Active(queue, message.receipt_handle, asyncio.current_task())
        self._active[run_id] = active
        last_beat = time.monotonic()

        async def heartbeat() -> bool:
            nonlocal last_beat
            if time.monotonic() - last_beat < self.settings.worker_heartbeat_seconds:
                return True
            last_beat = time.monotonic()
            try:
                await asyncio.to_thread(
                    active.queue.change_visibility, active.receipt_handle,
                    self.settings.worker_visibility_seconds,
                )
            except (BotoCoreError, ClientError) as error:
                logger.warning("run %s: visibility not extended (%s)", run_id, error)
            return await asyncio.to_thread(dispatch.renew_lease, self.settings, run_id, self.worker_id)

        pipeline, owner_id, attempt, ordering_key = await asyncio.to_thread(self._labels, run_id)
        _CONTEXTS[run_id] = RunContext(
            self.settings, self.worker_id, self.access_for, heartbeat, resume=resume
        )
        try:
            with tags("orca", f"pipeline:{pipeline}", f"user:{owner_id}"):
                await execute_run.with_options(flow_run_name=f"{pipeline}-{run_id[:8]}")(
                    run_id=run_id, pipeline=pipeline, attempt=attempt, return_state=True
                )
            # Release the ordering key only once the run has its final state. A run taken
            # over by another worker is that worker's to finish; a flow that crashed leaves
            # the message to come back, and the run is resumed when the lease lapses.
            if not await asyncio.to_thread(dispatch.is_finished, self.settings, run_id):
                return
            await asyncio.to_thread(queue.delete, active.receipt_handle)
            self._stats.finished += 1
            await asyncio.to_thread(self._wake, ordering_key)
        finally:
            _CONTEXTS.pop(run_id, None)
            self._active.pop(run_id, None)

    def _labels(self, run_id: str) -> tuple[str, int, int, str]:
        with session_scope(self.settings.effective_database_url) as session:
            run = session.get(Run, run_id)
            assert run is not None
            return run.pipeline.name, run.owner_id, run.attempt, run.ordering_key

    async def _release_all(self) -> None:
        """On shutdown: hand every held run back at once; another worker resumes it."""
        for run_id, active in list(self._active.items()):
            if active.task is not None:
                active.task.cancel()
            await asyncio.to_thread(dispatch.release_run, self.settings, run_id, self.worker_id)
            try:
                await asyncio.to_thread(active.queue.change_visibility, active.receipt_handle, 0)
            except (BotoCoreError, ClientError):
                pass  # it becomes visible when its timeout lapses anyway

    # --- the sweeper ------------------------------------------------------------------

    def _wake(self, ordering_key: str) -> None:
        """Send the message of the key's next run if it is parked (or was never sent)."""
        with session_scope(self.settings.effective_database_url) as session:
            run = dispatch.next_parked_run(session, ordering_key)
            if run is None:
                return
            pipeline = session.get(Pipeline, run.pipeline_id)
            try:
                run.sqs_message_id = send_run_message(
                    self.access_for(pipeline.link_id), run, resend=True
                )
                logger.info("sent the message of run %s (seq %s of %s)", run.id, run.sequence, ordering_key)
            except (BotoCoreError, ClientError, OrcaError) as error:
                logger.warning("could not send run %s: %s; the sweeper retries", run.id, error)

    def _sweep(self) -> None:
        """Wake keys whose next run has no message: parked runs whose blocker's worker died,
        and runs whose submitter died between commit and send."""
        link_ids = list(set(self._queues.values()) | set(self._access))
        if not link_ids:
            return
        with session_scope(self.settings.effective_database_url) as session:
            keys = dispatch.keys_to_wake(session, link_ids)
        for key in keys:
            self._wake(key)
