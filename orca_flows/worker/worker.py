"""The worker loop: long-poll each linked queue, claim behind the fence, run as flows."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from prefect import tags

from orca_flows.aws.sqs import FifoQueue, QueueMessage
from orca_flows.db.models import CloudLink
from orca_flows.db.repositories import links as links_repo
from orca_flows.errors import OrcaError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings
from orca_flows.worker import claims, run_context
from orca_flows.worker.claims import ClaimAction
from orca_flows.worker.execution import execute_run
from orca_flows.worker.link_health import LinkHealth, LinkRef
from orca_flows.worker.polling import PollSettings, load_poll_settings, log_overrides
from orca_flows.worker.sweeper import Sweeper

__all__ = ["Worker", "WorkerOptions", "run_worker"]

logger = get_logger(__name__)
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
    poll: PollSettings  # of the receive: its visibility is what the heartbeat renews
    receipt_handle: str
    task: asyncio.Task[None] | None = None


@dataclass
class _Poller:
    """One link's receive loop, with the link's own access and the poll settings it uses."""

    link: LinkRef
    access: LinkAccess
    poll: PollSettings
    retired: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def link_id(self) -> int:
        return self.link.id


@dataclass
class _Stats:
    finished: int = 0
    last_activity: float = field(default_factory=time.monotonic)


def run_worker(settings: OrcaSettings, options: WorkerOptions) -> int:
    """Run a worker against the Prefect API Orca uses until it stops; returns runs finished."""
    with prefect_api(settings):
        return asyncio.run(Worker(settings, options).run())


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
        # One poller per link, never per queue: two links on one queue URL (two users'
        # roles, say) are each served with their own credentials.
        self._pollers: dict[int, _Poller] = {}  # link id -> its poller
        self._health = LinkHealth(settings)
        self._stop = asyncio.Event()
        self._stats = _Stats()
        self._sweeper = Sweeper(settings, self.access_for)

    # --- links and queues -------------------------------------------------------------

    @property
    def served_queues(self) -> dict[str, int]:
        """The queues being polled now, each with the id of the link it is polled through."""
        return {poller.link.queue_url: link_id for link_id, poller in self._pollers.items()}

    @property
    def served_links(self) -> dict[int, str]:
        """The links being polled now, each with its queue URL."""
        return {link_id: poller.link.queue_url for link_id, poller in self._pollers.items()}

    def _load_links(self) -> list[CloudLink]:
        with unit_of_work(self.settings) as session:
            return list(links_repo.links_to_serve(session, self.options.links))

    def access_for(self, link_id: int) -> LinkAccess:
        """The access of a link: one refreshing session per link, renewed by each links refresh."""
        if link_id not in self._access:
            with unit_of_work(self.settings) as session:
                link = links_repo.get_link_by_id(session, link_id)
                if link is None:
                    raise OrcaError(f"link {link_id} was removed")
            self._access[link_id] = LinkAccess.load(link)
        return self._access[link_id]

    async def refresh_links(self) -> None:
        """Follow the links table: poll new links' queues, stop polling removed ones, and
        drop the access (ExternalId, role, bucket) of a link whose block document changed.

        The blocks are read again on every refresh (`orca link update` changes their
        contents, not their names; so does an edit in Prefect's UI). A queue whose access
        or queue block changed gets a new poller; the old one ends after its current
        receive, so the messages it holds are still handled.
        """
        links = await asyncio.to_thread(self._load_links)
        wanted: dict[int, LinkRef] = {}
        polls: dict[int, PollSettings] = {}  # absent: Prefect down, poll as before
        for link in links:
            current = self._access.get(link.id)
            try:
                fresh: LinkAccess | None = await asyncio.to_thread(LinkAccess.reload, link)
            except OrcaError as error:
                # Prefect down, say: a link already served keeps its access meanwhile.
                fresh = None
                log = logger.warning if current is not None else logger.error
                log("link %s (id %s) not (re)loaded: %s", link.name, link.id, error)
            if fresh is not None and (current is None or current.marker != fresh.marker):
                if current is not None:
                    logger.info(
                        "link %s (id %s) changed; using its new settings", link.name, link.id
                    )
                self._access[link.id] = fresh
            if link.queue_url and link.id in self._access:
                wanted[link.id] = LinkRef(
                    link.id, link.name, link.block_document_name, link.queue_url
                )
                poll = await asyncio.to_thread(load_poll_settings, self.settings, link)
                if poll is not None:
                    polls[link.id] = poll
        known = {link.id for link in links}
        for link_id in [link_id for link_id in self._access if link_id not in known]:
            del self._access[link_id]
            self._health.forget(link_id)
        for link_id, poller in list(self._pollers.items()):
            if (
                wanted.get(link_id) != poller.link
                or (poller.task is not None and poller.task.done())  # ended by a bug: restart
                or self._access.get(link_id) is not poller.access
                or polls.get(link_id, poller.poll) != poller.poll
            ):
                poller.retired.set()
                del self._pollers[link_id]
                url = poller.link.queue_url
                logger.info("stopped serving queue %s (link id %s)", url, link_id)
        for link_id, ref in wanted.items():
            if link_id not in self._pollers:
                poll = polls.get(link_id) or PollSettings.of(self.settings, None, "Prefect down")
                poller = _Poller(ref, self._access[link_id], poll)
                poller.task = asyncio.create_task(self._poll(ref.queue_url, poller))
                self._pollers[link_id] = poller
                log = logger.info if poll.from_block else logger.warning
                log("serving queue %s (link id %s): %s", ref.queue_url, link_id, poll.describe())

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> int:
        """Work until stopped (SIGTERM/SIGINT), ``max_runs`` reached or idle too long.

        Returns:
            How many runs this worker finished.
        """
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        logger.info("worker %s started (concurrency %s)", self.worker_id, self.options.concurrency)
        log_overrides(self.settings)
        next_refresh = next_sweep = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_refresh:
                    await self.refresh_links()
                    next_refresh = now + _LINK_REFRESH_S
                if now >= next_sweep:
                    await asyncio.to_thread(self.sweep)
                    next_sweep = now + _SWEEP_EVERY_S
                if self._done():
                    break
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=0.5)
                except TimeoutError:
                    pass
        finally:
            for poller in self._pollers.values():
                poller.retired.set()
                if poller.task is not None:
                    poller.task.cancel()
            await self._release_all()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        logger.info(
            "worker %s stopped after finishing %s run(s)", self.worker_id, self._stats.finished
        )
        return self._stats.finished

    def stop(self) -> None:
        """Ask the worker to stop, as SIGTERM does: ``run`` hands its runs back and returns."""
        self._stop.set()

    def _done(self) -> bool:
        if self.options.max_runs is not None and self._stats.finished >= self.options.max_runs:
            return not self._active
        idle = self.options.idle_exit
        if idle is not None and not self._active:
            return time.monotonic() - self._stats.last_activity >= idle
        return False

    async def _poll(self, url: str, poller: _Poller) -> None:
        queue = FifoQueue(poller.access.client("sqs"), url)
        while not self._stop.is_set() and not poller.retired.is_set():
            async with self._capacity:
                await self._capacity.wait_for(lambda: self._in_flight < self.options.concurrency)
                if poller.retired.is_set():
                    return
                # Reserve the slots before asking: pollers of several queues never overshoot.
                # A fair share each, so that one link's long polls never starve another's.
                share = max(1, self.options.concurrency // max(1, len(self._pollers)))
                free = self.options.concurrency - self._in_flight
                wanted = min(poller.poll.max_messages, share, free)
                self._in_flight += wanted
            try:
                messages = await asyncio.to_thread(
                    queue.receive,
                    max_messages=wanted,
                    wait_seconds=poller.poll.wait_seconds,
                    visibility_timeout=poller.poll.visibility_seconds,
                )
            except (BotoCoreError, ClientError, OrcaError) as error:
                # OrcaError: a refused credentials refresh (rotated ExternalId, revoked
                # role). Back off this link alone, reported once per back-off.
                await self._free(wanted)
                await self._health.back_off(poller.link, error, poller.retired)
                continue
            except BaseException:  # cancelled or a bug: never keep the slots
                await self._free(wanted)
                raise
            if self._health.failing(poller.link_id):
                await asyncio.to_thread(self._health.recovered, poller.link)
            await self._free(wanted - len(messages))
            await asyncio.sleep(0)  # pollers waiting for slots reserve theirs first
            if messages:
                self._stats.last_activity = time.monotonic()
            for message in messages:
                asyncio.create_task(self._handle(queue, poller.poll, message))

    async def _free(self, slots: int) -> None:
        async with self._capacity:
            self._in_flight -= slots
            self._capacity.notify_all()

    # --- one message --------------------------------------------------------------------

    async def _handle(self, queue: FifoQueue, poll: PollSettings, message: QueueMessage) -> None:
        try:
            await self._dispatch(queue, poll, message)
        except Exception:  # a bug must not kill the worker; the message comes back
            logger.exception("message %s: unexpected error", message.message_id)
        finally:
            self._stats.last_activity = time.monotonic()
            await self._free(1)

    async def _dispatch(self, queue: FifoQueue, poll: PollSettings, message: QueueMessage) -> None:
        try:
            run_id = None if message.probe else json.loads(message.body)["run_id"]
        except (ValueError, KeyError, TypeError):
            run_id = None
        if run_id is None:
            # A `link check` probe (its own group, so it holds no run back; the check does
            # not need it back) or not a run at all: delete it, never claim anything.
            await asyncio.to_thread(queue.delete, message.receipt_handle)
            return
        if run_id in self._active:
            # Our own run came back (a late heartbeat): keep the newest receipt.
            self._active[run_id].receipt_handle = message.receipt_handle
            return
        claim = await asyncio.to_thread(claims.claim_run, self.settings, run_id, self.worker_id)
        logger.debug(
            "run %s message %s: %s %s", run_id, message.message_id, claim.action, claim.detail
        )
        if claim.action == ClaimAction.DROP:
            await asyncio.to_thread(queue.delete, message.receipt_handle)
        elif claim.action == ClaimAction.PARK:
            await asyncio.to_thread(queue.delete, message.receipt_handle)
            # The blocker may have finished between our check and the park: look again.
            await asyncio.to_thread(self.wake, claim.ordering_key)
        elif claim.action == ClaimAction.BUSY:
            await asyncio.to_thread(queue.change_visibility, message.receipt_handle, claim.delay)
        else:
            active = _Active(queue, poll, message.receipt_handle, asyncio.current_task())
            await self._execute(active, run_id, resume=claim.action == ClaimAction.RESUME)

    async def _execute(self, active: _Active, run_id: str, *, resume: bool) -> None:
        self._active[run_id] = active
        last_beat = time.monotonic()

        async def heartbeat() -> bool:
            nonlocal last_beat
            if time.monotonic() - last_beat < active.poll.heartbeat_seconds:
                return True
            last_beat = time.monotonic()
            try:
                await asyncio.to_thread(
                    active.queue.change_visibility,
                    active.receipt_handle,
                    active.poll.visibility_seconds,
                )
            except (BotoCoreError, ClientError) as error:
                logger.warning("run %s: visibility not extended (%s)", run_id, error)
            return await asyncio.to_thread(
                claims.renew_lease, self.settings, run_id, self.worker_id
            )

        try:
            labels = await asyncio.to_thread(claims.run_labels, self.settings, run_id)
            if labels is None:  # removed meanwhile (its pipeline was deleted)
                await asyncio.to_thread(active.queue.delete, active.receipt_handle)
                return
            context = run_context.RunContext(
                self.settings, self.worker_id, self.access_for, heartbeat, resume=resume
            )
            # Each message is handled in a task of its own, with its own copy of the
            # context variables: the flow reads this run's worker hooks from it.
            run_context.WORKER_CONTEXT.set(context)
            with tags("orca", f"pipeline:{labels.pipeline}", f"user:{labels.owner_id}"):
                flow = execute_run.with_options(flow_run_name=f"{labels.pipeline}-{run_id[:8]}")
                parameters = {"pipeline": labels.pipeline, "attempt": labels.attempt}
                await flow(run_id=run_id, **parameters, return_state=True)
            # Release the ordering key only once the run has its final state. A run taken
            # over by another worker is that worker's to finish; a flow that crashed leaves
            # the message to come back, and the run is resumed when the lease lapses.
            if not await asyncio.to_thread(claims.is_finished, self.settings, run_id):
                return
            await asyncio.to_thread(active.queue.delete, active.receipt_handle)
            self._stats.finished += 1
            await asyncio.to_thread(self.wake, labels.ordering_key)
        finally:
            self._active.pop(run_id, None)

    async def _release_all(self) -> None:
        """On shutdown: hand every held run back at once; another worker resumes it."""
        for run_id, active in list(self._active.items()):
            await run_context.cancel_and_wait(active.task)  # a start in flight is recorded first
            await asyncio.to_thread(claims.release_run, self.settings, run_id, self.worker_id)
            try:
                await asyncio.to_thread(active.queue.change_visibility, active.receipt_handle, 0)
            except (BotoCoreError, ClientError):
                pass  # it becomes visible when its timeout lapses anyway

    # --- the sweeper (orca_flows.worker.sweeper) ----------------------------------------

    def wake(self, ordering_key: str) -> None:
        """Send the message of the key's next run if it is parked (see ``Sweeper.wake``)."""
        self._sweeper.wake(ordering_key)

    def sweep(self) -> None:
        """Re-send the wake-up message of every run that lacks a live one, on the links
        this worker serves (see ``Sweeper.sweep``)."""
        self._sweeper.sweep(sorted(set(self._pollers) | set(self._access)))
