"""Task Summary: one user's runs counted, charted and paged (the SQL: db.repositories.summary)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from orca_flows.db.repositories import summary as summary_repo
from orca_flows.db.repositories.summary import RunScope
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import RunState
from orca_flows.domain.views import elapsed_seconds
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
    state: RunState
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    script_version: int
    exit_code: int | None

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish; ``None`` until both are known."""
        return elapsed_seconds(self.started_at, self.finished_at)


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
    state: RunState
    seconds: float


@dataclass(frozen=True)
class RunSummary:
    """What Task Summary shows, read in one unit of work."""

    counts: dict[RunState, int]
    points: Sequence[DurationPoint]
    page: RunPage


def _scope(session: Session, actor: Actor, runs: RunFilter, *, states: bool = True) -> RunScope:
    """The actor's runs that ``runs`` selects, its pipeline resolved and its states checked."""
    pipeline_id = None
    if runs.pipeline:
        # Through the actor's pipelines only: another user's name is "no such pipeline".
        pipeline_id = get_pipeline(session, actor, runs.pipeline).id
    picked: tuple[str, ...] = ()
    if states and runs.states:
        unknown = sorted(set(runs.states) - set(RunState))
        if unknown:
            raise InvalidInputError(
                "state", f"state {unknown[0]!r} must be one of: {', '.join(RunState)}."
            )
        picked = runs.states
    return RunScope(actor.user_id, pipeline_id, picked, runs.since, runs.until)


def count_by_state(settings: OrcaSettings, actor: Actor, runs: RunFilter) -> dict[RunState, int]:
    """Runs per state (every state present, zeros included).

    The state filter is ignored on purpose: the counts are what lets a user pick one.

    Raises:
        NotFoundError: The filter names a pipeline the actor does not have.
    """
    with unit_of_work(settings) as session:
        return _count_by_state(session, actor, runs)


def _count_by_state(session: Session, actor: Actor, runs: RunFilter) -> dict[RunState, int]:
    counts = dict.fromkeys(RunState, 0)
    counts.update(
        summary_repo.count_runs_by_state(session, _scope(session, actor, runs, states=False))
    )
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
    scope = _scope(session, actor, runs)
    total = summary_repo.count_runs(session, scope)
    page = min(page, max(1, math.ceil(total / page_size)))
    found = summary_repo.page_rows(session, scope, limit=page_size, offset=(page - 1) * page_size)
    rows = tuple(RunRow(*row) for row in found)
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
    return [
        DurationPoint(finished, name, state, (finished - started).total_seconds())
        for started, finished, name, state in summary_repo.duration_rows(
            session, _scope(session, actor, runs), limit=limit
        )
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
