"""Reading and setting the state of an execution's Prefect flow runs (public client only).

Best effort throughout: Prefect being briefly away must never fail or stall an Orca run,
so every call here logs and returns instead of raising. Call these with no database
transaction open (they are network calls).
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelled, Crashed, State
from prefect.utilities.asyncutils import run_coro_as_sync

from orca_flows.logs import get_logger

__all__ = ["cancel_requested", "cancel_stale_flow_runs", "crash_stale_flow_runs"]

logger = get_logger(__name__)

# The states a flow run has once someone asked Prefect to cancel it (the UI, or
# `prefect flow-run cancel`): no runner watches an in-process flow, so Orca acts on them.
_CANCEL_STATES = frozenset({StateType.CANCELLING, StateType.CANCELLED})


async def cancel_requested(flow_run_id: str) -> bool:
    """Whether the flow run ``flow_run_id`` was put in Cancelling or Cancelled in Prefect.

    ``False`` when its state cannot be read (Prefect away): the next poll asks again.
    """
    try:
        async with get_client() as client:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
    except Exception as error:  # Prefect away or the flow run deleted: never fail the run
        logger.debug("flow run %s: state not read (%s)", flow_run_id, error)
        return False
    return flow_run.state is not None and flow_run.state.type in _CANCEL_STATES


async def crash_stale_flow_runs(flow_run_ids: list[str], message: str) -> list[str]:
    """Set each of ``flow_run_ids`` that is not final in Prefect ``Crashed`` with ``message``.

    Used when a worker takes a run over: the flow runs of the workers that died before
    it would otherwise stay ``Running`` for ever. Forced, because their own engines are
    gone and no orchestration rule should keep a dead flow run alive.

    Returns:
        The ids set ``Crashed`` (a flow run that cannot be read or set is logged and left).
    """
    return await _end_unfinished(flow_run_ids, lambda: Crashed(message=message))


def cancel_stale_flow_runs(flow_run_ids: list[str], message: str) -> list[str]:
    """Set each of ``flow_run_ids`` that is not final ``Cancelled`` (forced); a sync call.

    Used by a stop that finished a run whose worker was gone: its flow run would
    otherwise stay ``Running`` while the run is ``cancelled``.

    Returns:
        The ids set ``Cancelled`` (a flow run that cannot be read or set is logged and left).
    """
    ended = run_coro_as_sync(_end_unfinished(flow_run_ids, lambda: Cancelled(message=message)))
    return ended or []


async def _end_unfinished(flow_run_ids: list[str], state: Callable[[], State]) -> list[str]:
    ended: list[str] = []
    if not flow_run_ids:
        return ended
    try:
        async with get_client() as client:
            for flow_run_id in flow_run_ids:
                try:
                    flow_run = await client.read_flow_run(UUID(flow_run_id))
                    if flow_run.state is not None and flow_run.state.is_final():
                        continue
                    await client.set_flow_run_state(UUID(flow_run_id), state(), force=True)
                except Exception as error:  # one flow run's failure must not stop the rest
                    logger.warning("flow run %s not ended: %s", flow_run_id, error)
                else:
                    ended.append(flow_run_id)
    except Exception as error:  # Prefect away
        logger.warning("earlier flow runs %s not ended: %s", flow_run_ids, error)
    return ended
