"""Orca's run events in Prefect's event system: names, resource ids, and the one emit.

A Prefect automation matches on these, so the names and ids are a public contract
(docs/notifications.md): ``orca.run.<state>`` about resource ``orca.run.<run id>``, with
the pipeline, the ordering key, the owner and, when known, the execution's flow run as
related resources.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect.events import Event, emit_event

__all__ = [
    "RunFacts",
    "emit_run_event",
    "event_name",
    "ordering_key_resource_id",
    "owner_resource_id",
    "pipeline_resource_id",
    "run_resource_id",
]

EVENT_PREFIX = "orca.run."
# Events are small; a long error summary is cut so the event stays far under Prefect's
# maximum event size (an event over it is refused whole).
_MAX_ERROR_CHARS = 2000
# Fixed namespace: the same transition reported twice is the same event id, which the
# server stores and the triggers service evaluates once (a retried report notifies once).
_EVENT_NAMESPACE = uuid.UUID("6c1f3a52-3f0e-4c7a-9d7e-0f6f4e2b9a11")


@dataclass(frozen=True)
class RunFacts:
    """What an event says about a run, read from Orca's database."""

    run_id: str
    state: str
    pipeline: str
    owner_id: int
    owner_email: str
    ordering_key: str  # as stored (already scoped by the owner)
    sequence: int
    attempt: int
    exit_code: int | None
    error: str | None
    requested_by: str
    flow_run_id: str | None
    occurred: datetime | None  # when the run entered ``state``


def event_name(state: str) -> str:
    """``orca.run.<state>``, e.g. ``orca.run.failed``."""
    return f"{EVENT_PREFIX}{state}"


def run_resource_id(run_id: str) -> str:
    """The run's resource id: ``orca.run.<run id>``."""
    return f"orca.run.{run_id}"


def pipeline_resource_id(owner_id: int, pipeline: str) -> str:
    """A pipeline's resource id: ``orca.pipeline.<owner id>.<name>`` (names are per owner)."""
    return f"orca.pipeline.{owner_id}.{pipeline}"


def ordering_key_resource_id(ordering_key: str) -> str:
    """An ordering key's resource id: ``orca.ordering-key.<key as stored>``."""
    return f"orca.ordering-key.{ordering_key}"


def owner_resource_id(owner_id: int) -> str:
    """A user's resource id: ``orca.user.<id>``."""
    return f"orca.user.{owner_id}"


def _related(facts: RunFacts) -> list[dict[str, str]]:
    related = [
        {
            "prefect.resource.id": pipeline_resource_id(facts.owner_id, facts.pipeline),
            "prefect.resource.role": "pipeline",
            "prefect.resource.name": facts.pipeline,
        },
        {
            "prefect.resource.id": ordering_key_resource_id(facts.ordering_key),
            "prefect.resource.role": "ordering-key",
            "prefect.resource.name": facts.ordering_key,
        },
        {
            "prefect.resource.id": owner_resource_id(facts.owner_id),
            "prefect.resource.role": "owner",
            "prefect.resource.name": facts.owner_email,
        },
    ]
    if facts.flow_run_id:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{facts.flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        )
    return related


def _payload(facts: RunFacts) -> dict[str, Any]:
    error = facts.error
    if error and len(error) > _MAX_ERROR_CHARS:
        error = error[:_MAX_ERROR_CHARS] + "…"
    return {
        "state": facts.state,
        "pipeline": facts.pipeline,
        "sequence": facts.sequence,
        "attempt": facts.attempt,
        "exit_code": facts.exit_code,
        "error": error,
        "requested_by": facts.requested_by,
    }


def emit_run_event(facts: RunFacts) -> Event | None:
    """Hand ``orca.run.<state>`` to Prefect's events worker; returns the event (None if
    Prefect emits nothing, e.g. events are off).

    Call it inside ``prefect_api`` with an API URL resolved: without one Prefect would
    start an ephemeral server just to send the event. Sending is asynchronous (Prefect's
    ``EventsWorker`` thread); a process that exits drains it first (Prefect registers
    that drain at thread shutdown), so a short-lived CLI's event still reaches the server.
    Inside a flow or task run, Prefect also relates the event to that run.
    """
    return emit_event(
        event_name(facts.state),
        resource={
            "prefect.resource.id": run_resource_id(facts.run_id),
            "prefect.resource.name": f"{facts.pipeline} #{facts.sequence}",
            "orca.pipeline": facts.pipeline,
        },
        occurred=facts.occurred,
        related=_related(facts),
        payload=_payload(facts),
        id=uuid.uuid5(_EVENT_NAMESPACE, f"{facts.run_id}:{facts.state}:{facts.attempt}"),
    )
