"""What the worker hands a run's flow (``RunContext``), and how it lets a flow go.

Flow parameters must be plain data, so the worker registers each run's context here by
run id before starting its flow run, and forgets it once the flow run has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.settings import OrcaSettings

__all__ = ["RunContext", "cancel_and_wait", "context_of", "forget_context", "register_context"]


@dataclass
class RunContext:
    """What the worker gives a run's flow: settings, its link access and a heartbeat.

    ``heartbeat`` renews the lease and the message's visibility when due and says whether
    the run is still this worker's; the flow calls it from its keeper task.
    """

    settings: OrcaSettings
    worker_id: str
    access_for: Callable[[int], LinkAccess]
    heartbeat: Callable[[], Awaitable[bool]]
    resume: bool = False
    log_offset: int = field(default=0)
    lease_lost: asyncio.Event = field(default_factory=asyncio.Event)


# Context handed from the worker to the flow by run id (flow parameters must be plain data).
_CONTEXTS: dict[str, RunContext] = {}


def register_context(run_id: str, context: RunContext) -> None:
    """Hand ``context`` to the flow run that is about to execute ``run_id``."""
    _CONTEXTS[run_id] = context


def context_of(run_id: str) -> RunContext:
    """The context registered for ``run_id``."""
    return _CONTEXTS[run_id]


def forget_context(run_id: str) -> None:
    """Drop ``run_id``'s context once its flow run has ended."""
    _CONTEXTS.pop(run_id, None)


async def cancel_and_wait(task: asyncio.Task[None] | None, timeout: float = 60.0) -> None:
    """Cancel a run's task (shutdown) and wait for it to let go: a start in flight is
    recorded first, so the next worker resumes the execution instead of starting another."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait([task], timeout=timeout)
