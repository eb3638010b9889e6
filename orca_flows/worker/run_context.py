"""What a run's flow works with (``RunContext``): the worker's hooks, or its own claim.

Flow parameters are plain data (the run id), so the flow can be started or retried from
Prefect's UI or CLI. Inside `orca worker`, the worker hands its hooks (its lease holder
id, link access and a heartbeat that also keeps the SQS message hidden) through the
``WORKER_CONTEXT`` context variable, set only around its own in-process flow call. With
no worker context, the flow claims the run itself (``claim_standalone``) under its own
lease holder id, ``flow-run:<id>``; the run's SQS message stays with the workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from orca_flows.db.repositories import links as links_repo
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.states import RunState
from orca_flows.errors import InvalidStateError, NotFoundError
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings
from orca_flows.worker import claims
from orca_flows.worker.claims import ClaimAction

__all__ = [
    "WORKER_CONTEXT",
    "RunContext",
    "Standalone",
    "cancel_and_wait",
    "claim_standalone",
]


@dataclass
class RunContext:
    """What a run's flow works with: settings, its link access and a heartbeat.

    ``heartbeat`` renews the lease (and, in a worker, the message's visibility) when due
    and says whether the run is still this holder's; the flow calls it from its keeper.
    ``standalone``: the flow claimed the run itself (no worker): once the run is final,
    it wakes the key's next run, as a worker does after deleting the message.
    """

    settings: OrcaSettings
    worker_id: str
    access_for: Callable[[int], LinkAccess]
    heartbeat: Callable[[], Awaitable[bool]]
    resume: bool = False
    standalone: bool = False
    log_offset: int = field(default=0)
    lease_lost: asyncio.Event = field(default_factory=asyncio.Event)


# Set by the worker around its in-process call of the flow, and only there: a flow run
# started by Prefect (UI, CLI, a retry) finds it unset and claims the run itself.
WORKER_CONTEXT: ContextVar[RunContext | None] = ContextVar("orca_worker_context", default=None)


@dataclass(frozen=True)
class Standalone:
    """The outcome of ``claim_standalone``: a context to execute with, or the final state
    the run already has (nothing to run)."""

    context: RunContext | None = None
    final: RunState | None = None


def _access_for(settings: OrcaSettings) -> Callable[[int], LinkAccess]:
    cache: dict[int, LinkAccess] = {}

    def access_for(link_id: int) -> LinkAccess:
        if link_id not in cache:
            with unit_of_work(settings) as session:
                link = links_repo.get_link_by_id(session, link_id)
                if link is None:
                    raise NotFoundError("link", str(link_id))
            cache[link_id] = LinkAccess.load(link)  # a network call: outside the unit
        return cache[link_id]

    return access_for


def _final_state(settings: OrcaSettings, run_id: str) -> RunState | None:
    with unit_of_work(settings) as session:
        run = runs_repo.get_run(session, run_id)
        return None if run is None else RunState(run.state)


def claim_standalone(settings: OrcaSettings, run_id: str, flow_run_id: str) -> Standalone:
    """Claim ``run_id`` for a flow run started outside `orca worker`.

    Raises:
        NotFoundError: No such run.
        InvalidStateError: Another worker holds the run, or it waits for an earlier run
            of its key; the message says who and what to do.
    """
    holder = f"flow-run:{flow_run_id}"
    claim = claims.claim_run(settings, run_id, holder)
    if claim.action == ClaimAction.DROP:
        final = _final_state(settings, run_id)
        if final is None:
            raise NotFoundError("run", run_id)
        return Standalone(final=final)
    if claim.action == ClaimAction.BUSY:
        raise InvalidStateError(
            f"run {run_id} is busy ({claim.detail}): "
            "its own flow run reports it. Wait for it to finish, or stop it with "
            f"`orca run stop {run_id}` (or cancel that flow run in Prefect)."
        )
    if claim.action == ClaimAction.PARK:
        raise InvalidStateError(
            f"run {run_id} {claim.detail}: runs of ordering key {claim.ordering_key!r} run "
            "in order. It starts once that run has finished (a worker wakes it)."
        )

    every = settings.worker_lease_seconds / 3  # renewed well before it can lapse
    last_beat = time.monotonic()

    async def heartbeat() -> bool:
        # No SQS message to keep hidden here: the lease is all there is to renew.
        nonlocal last_beat
        if time.monotonic() - last_beat < every:
            return True
        last_beat = time.monotonic()
        return await asyncio.to_thread(claims.renew_lease, settings, run_id, holder)

    context = RunContext(
        settings,
        holder,
        _access_for(settings),
        heartbeat,
        resume=claim.action == ClaimAction.RESUME,
        standalone=True,
    )
    return Standalone(context=context)


async def cancel_and_wait(task: asyncio.Task[None] | None, timeout: float = 60.0) -> None:
    """Cancel a run's task (shutdown) and wait for it to let go: a start in flight is
    recorded first, so the next worker resumes the execution instead of starting another."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait([task], timeout=timeout)
