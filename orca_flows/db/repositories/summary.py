"""Task Summary's reads on ``runs``: counts by state, one page of rows, recent durations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from orca_flows.db.models import Pipeline, Run, ScriptVersion
from orca_flows.domain.states import RunState

__all__ = [
    "DurationRow",
    "PageRow",
    "RunScope",
    "count_runs",
    "count_runs_by_state",
    "duration_rows",
    "page_rows",
]

# One line of the runs table: id, pipeline name, state, requested, started, finished,
# script version, exit code.
PageRow = tuple[str, str, RunState, datetime, datetime | None, datetime | None, int, int | None]
# A finished run's started, finished, pipeline name and state.
DurationRow = tuple[datetime, datetime, str, RunState]
# Any select: `_scoped` adds WHERE clauses and keeps its column types.
_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class RunScope:
    """Which of one owner's runs a query covers; empty fields do not filter.

    Attributes:
        owner_id: The runs' owner.
        pipeline_id: One of the owner's pipelines (the caller resolved it).
        states: Run states (the caller validated them).
        since: Requested at or after this moment (aware).
        until: Requested before this moment (aware).
    """

    owner_id: int
    pipeline_id: int | None = None
    states: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


def _scoped(query: _Query, scope: RunScope) -> _Query:
    """``query`` limited to the runs ``scope`` covers."""
    query = query.where(Run.owner_id == scope.owner_id)
    if scope.pipeline_id is not None:
        query = query.where(Run.pipeline_id == scope.pipeline_id)
    if scope.states:
        query = query.where(Run.state.in_(scope.states))
    if scope.since is not None:
        query = query.where(Run.requested_at >= scope.since)
    if scope.until is not None:
        query = query.where(Run.requested_at < scope.until)
    return query


def count_runs_by_state(session: Session, scope: RunScope) -> dict[RunState, int]:
    """How many runs ``scope`` covers in each state (states without runs are left out)."""
    query = _scoped(select(Run.state, func.count()), scope).group_by(Run.state)
    return {RunState(state): count for state, count in session.execute(query)}


def count_runs(session: Session, scope: RunScope) -> int:
    """How many runs ``scope`` covers."""
    return session.scalar(_scoped(select(func.count()).select_from(Run), scope)) or 0


def page_rows(session: Session, scope: RunScope, *, limit: int, offset: int) -> list[PageRow]:
    """``limit`` of the covered runs from ``offset`` on, newest first (LIMIT/OFFSET in SQL)."""
    columns = (
        select(
            Run.id,
            Pipeline.name,
            Run.state,
            Run.requested_at,
            Run.started_at,
            Run.finished_at,
            ScriptVersion.version,
            Run.exit_code,
        )
        .join(Pipeline, Pipeline.id == Run.pipeline_id)
        .join(ScriptVersion, ScriptVersion.id == Run.script_version_id)
    )
    query = (
        _scoped(columns, scope)
        .order_by(Run.requested_at.desc(), Run.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.execute(query))


def duration_rows(session: Session, scope: RunScope, *, limit: int) -> list[DurationRow]:
    """The most recent ``limit`` covered runs that started and finished, newest first."""
    query = (
        _scoped(
            select(Run.started_at, Run.finished_at, Pipeline.name, Run.state).join(
                Pipeline, Pipeline.id == Run.pipeline_id
            ),
            scope,
        )
        .where(Run.started_at.is_not(None), Run.finished_at.is_not(None))
        .order_by(Run.requested_at.desc())
        .limit(limit)
    )
    # The WHERE above leaves out NULL start and finish times.
    return cast("list[DurationRow]", list(session.execute(query)))
