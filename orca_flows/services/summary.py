"""Task Summary's queries: one user's runs counted, charted and paged in the database."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from orca_flows.db.models import Pipeline, Run, ScriptVersion
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import RunState
from orca_flows.errors import InvalidInputError
from orca_flows.services.lookup import get_pipeline
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "DurationPoint",
    "RunFilter",
    "RunPage",
    "RunRow",
    "RunSummary",
    "count_by_state",
    "duration_points",
    "list_run_page",
    "summarize_runs",
]

MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class RunFilter:
    """Which runs to show; empty fields do not filter.

    Attributes:
        pipeline: A pipeline name of the owner.
        states: Run states (any of ``RunState``).
        since: Requested at or after this moment (aware).
        until: Requested before this moment (aware).
    """

    pipeline: str | None = None
    states: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class RunRow:
    """One line of the runs table (no S3 or Prefect lookups behind it)."""

    id: str
    pipeline: str
    state: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    script_version: int
    exit_code: int | None

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish; ``None`` until both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class RunPage:
    """One page of runs, newest first, and where it sits among all matches."""

    rows: tuple[RunRow, ...]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """How many pages the matches fill (at least one, even when empty)."""
        return max(1, math.ceil(self.total / self.page_size))


@dataclass(frozen=True)
class DurationPoint:
    """A finished run's duration, for the chart of durations over time."""

    finished_at: datetime
    pipeline: str
    state: str
    seconds: float


@dataclass(frozen=True)
class RunSummary:
    """What Task Summary shows, read in one unit of work."""

    counts: dict[RunState, int]
    points: Sequence[DurationPoint]
    page: RunPage


def _scoped(
    session: Session, actor: Actor, query: Select, runs: RunFilter, *, states: bool = True
) -> Select:
    """``query`` limited to the actor's runs that ``runs`` selects."""
    query = query.where(Run.owner_id == actor.user_id)
    if runs.pipeline:
        # Through the actor's pipelines only: another user's name is "no such pipeline".
        query = query.where(Run.pipeline_id == get_pipeline(session, actor, runs.pipeline).id)
    if states and runs.states:
        unknown = sorted(set(runs.states) - set(RunState))
        if unknown:
            raise InvalidInputError(
                "state", f"state {unknown[0]!r} must be one of: {', '.join(RunState)}."
            )
        query = query.where(Run.state.in_(runs.states))
    if runs.since is not None:
        query = query.where(Run.requested_at >= runs.since)
    if runs.until is not None:
        query = query.where(Run.requested_at < runs.until)
    return query


def count_by_state(settings: OrcaSettings, actor: Actor, runs: RunFilter) -> dict[RunState, int]:
    """Runs per state (every state present, zeros included).

    The state filter is ignored on purpose: the counts are what lets a user pick one.

    Raises:
        NotFoundError: The filter names a pipeline the actor does not have.
    """
    with unit_of_work(settings) as session:
        return _count_by_state(session, actor, runs)


def _count_by_state(session: Session, actor: Actor, runs: RunFilter) -> dict[RunState, int]:
    query = _scoped(session, actor, select(Run.state, func.count()), runs, states=False)
    counts = dict.fromkeys(RunState, 0)
    for state, count in session.execute(query.group_by(Run.state)):
        counts[state] = count
    return counts


def list_run_page(
    settings: OrcaSettings, actor: Actor, runs: RunFilter, *, page: int = 1, page_size: int = 50
) -> RunPage:
    """One page of the actor's matching runs, newest first (LIMIT/OFFSET in the database).

    A page past the last one gives the last page (a narrower filter has fewer pages);
    ``RunPage.page`` says which page was returned.

    Raises:
        InvalidInputError: A page or page size out of range, or an unknown state.
        NotFoundError: The filter names a pipeline the actor does not have.
    """
    with unit_of_work(settings) as session:
        return _list_run_page(session, actor, runs, page, page_size)


def _list_run_page(
    session: Session, actor: Actor, runs: RunFilter, page: int, page_size: int
) -> RunPage:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInputError(
            "page_size", f"page size must be 1 to {MAX_PAGE_SIZE}, not {page_size}."
        )
    if page < 1:
        raise InvalidInputError("page", f"page numbers start at 1, not {page}.")
    total = (
        session.scalar(_scoped(session, actor, select(func.count()).select_from(Run), runs)) or 0
    )
    page = min(page, max(1, math.ceil(total / page_size)))
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
        _scoped(session, actor, columns, runs)
        .order_by(Run.requested_at.desc(), Run.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    rows = tuple(RunRow(*row) for row in session.execute(query))
    return RunPage(rows, total, page, page_size)


def duration_points(
    settings: OrcaSettings, actor: Actor, runs: RunFilter, *, limit: int = 1000
) -> Sequence[DurationPoint]:
    """Durations of the most recent ``limit`` matching runs that started and finished.

    Durations are computed here rather than in SQL: date arithmetic differs between
    SQLite and MySQL, and ``limit`` keeps the transfer small.
    """
    with unit_of_work(settings) as session:
        return _duration_points(session, actor, runs, limit)


def _duration_points(
    session: Session, actor: Actor, runs: RunFilter, limit: int
) -> Sequence[DurationPoint]:
    query = (
        _scoped(
            session,
            actor,
            select(Run.started_at, Run.finished_at, Pipeline.name, Run.state).join(
                Pipeline, Pipeline.id == Run.pipeline_id
            ),
            runs,
        )
        .where(Run.started_at.is_not(None), Run.finished_at.is_not(None))
        .order_by(Run.requested_at.desc())
        .limit(limit)
    )
    return [
        DurationPoint(finished, name, state, (finished - started).total_seconds())
        for started, finished, name, state in session.execute(query)
    ]


def summarize_runs(
    settings: OrcaSettings, actor: Actor, runs: RunFilter, *, page: int = 1, page_size: int = 50
) -> RunSummary:
    """Counts by state, recent durations and one page of runs, in one unit of work.

    Raises:
        InvalidInputError: A page or page size out of range, or an unknown state.
        NotFoundError: The filter names a pipeline the actor does not have.
    """
    with unit_of_work(settings) as session:
        return RunSummary(
            _count_by_state(session, actor, runs),
            _duration_points(session, actor, runs, 1000),
            _list_run_page(session, actor, runs, page, page_size),
        )
