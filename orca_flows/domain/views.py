"""The one view of each concept, shared by the CLI's --json and the web app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orca_flows.domain.states import CheckStatus, RunState

__all__ = [
    "CheckStep",
    "LinkCheck",
    "LinkView",
    "PipelineView",
    "RunView",
    "ScheduleView",
    "ScriptVersionView",
    "elapsed_seconds",
]


def elapsed_seconds(start: datetime | str | None, end: datetime | str | None) -> float | None:
    """Seconds from ``start`` to ``end`` (moments or ISO strings); ``None`` unless both are
    known. The one place a run's waiting time and duration are computed."""
    if start is None or end is None:
        return None
    begun = datetime.fromisoformat(start) if isinstance(start, str) else start
    ended = datetime.fromisoformat(end) if isinstance(end, str) else end
    return (ended - begun).total_seconds()


@dataclass(frozen=True)
class ScriptVersionView:
    """One immutable version of a pipeline's script.

    Attributes:
        version: 1, 2, 3... in upload order.
        sha256: Hex sha256 of the script's bytes (the bootstrap checks it before running).
        size_bytes: The script's size.
        s3_uri: Where the script is stored in the link's bucket.
        uploaded_at: ISO 8601, UTC.
    """

    version: int
    sha256: str
    size_bytes: int
    s3_uri: str
    uploaded_at: str


@dataclass(frozen=True)
class PipelineView:
    """A pipeline as `orca pipeline show --json` prints it (`list --json` omits ``versions``).

    Attributes:
        name: The owner's name for it.
        link: The link it runs through.
        runner: ``ssm`` or ``local``.
        target: Instance ids or a tag selector (ssm runner), else ``None``.
        ordering_key: ``pipeline``, ``instance``, ``user`` or a custom key.
        timeout_seconds: Seconds before a run's script is killed.
        retries: Extra attempts after a failure.
        current_version: The version a new run executes (``None`` before the first upload
            is stored).
        created_at: ISO 8601, UTC.
        versions: The script versions, newest first.
    """

    name: str
    link: str
    runner: str
    target: str | None
    ordering_key: str
    timeout_seconds: int
    retries: int
    current_version: int | None
    created_at: str
    versions: tuple[ScriptVersionView, ...]


@dataclass(frozen=True)
class RunView:
    """A run as `orca run show --json` prints it (DESIGN.md's field list).

    Moments are ISO 8601 strings in UTC; ``outputs`` are ``s3://`` URIs (empty until the
    run has finished, or when the view was built without listing them).
    """

    id: str
    pipeline: str
    state: RunState
    ordering_key: str
    sequence: int
    attempt: int
    exit_code: int | None
    requested_at: str
    requested_by: str
    started_at: str | None
    finished_at: str | None
    script_version: int
    script_sha256: str
    command_id: str | None
    instance_id: str | None
    flow_run_id: str | None
    log_uri: str
    outputs: tuple[str, ...]
    error: str | None
    # Every Prefect flow run that executed the run, oldest first (more than one when a
    # worker died and another took over); read for one run, empty in listings.
    flow_run_ids: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        """Whether the run has reached a final state."""
        return RunState(self.state).finished

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish; ``None`` until both are known."""
        return elapsed_seconds(self.started_at, self.finished_at)


@dataclass(frozen=True)
class CheckStep:
    """One verified step of `orca link check`: its name, outcome, what was seen, the fix.

    Attributes:
        name: ``assume role``, ``account``, ``bucket``, ``queue`` or ``ssm targets``.
        status: How the step ended.
        detail: What Orca saw.
        fix: On failure, what to change (empty otherwise).
    """

    name: str
    status: CheckStatus
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class LinkCheck:
    """All steps of one link check; ``passed`` unless a step failed."""

    link: str
    steps: tuple[CheckStep, ...]

    @property
    def passed(self) -> bool:
        """No step failed (steps that cannot be verified here do not fail the check)."""
        return all(step.status != CheckStatus.FAILED for step in self.steps)


@dataclass(frozen=True)
class LinkView:
    """A link as `orca link list --json` prints it and Cloud Setup shows it (never the ExternalId).

    Attributes:
        name: The owner's name for it.
        provider: ``aws``.
        local: Whether it links the local sandbox.
        role_arn: The role Orca assumes.
        account_id: The linked account.
        region: The account's region for Orca.
        bucket: The Orca bucket in the linked account.
        queue_url: The FIFO run queue in the linked account.
        block_document: The Prefect block document holding its credentials.
        last_check_status: The outcome of the last `orca link check`, if any.
        last_check_at: When it ran, ISO 8601 UTC.
        last_check: Its steps.
    """

    name: str
    provider: str
    local: bool
    role_arn: str | None
    account_id: str | None
    region: str
    bucket: str | None
    queue_url: str | None
    block_document: str
    last_check_status: CheckStatus | None
    last_check_at: str | None
    last_check: tuple[CheckStep, ...] | None


@dataclass(frozen=True)
class ScheduleView:
    """A schedule as `orca schedule list --json` prints it and Task Scheduling shows it.

    Attributes:
        id: The schedule's id.
        pipeline: The pipeline's name.
        cron: The 5-field cron expression, or ``None`` for an interval.
        interval_seconds: Seconds between firings, or ``None`` for a cron expression.
        timezone: The IANA time zone the timing refers to.
        active: ``False`` while paused.
        deployment_id: The Prefect deployment that fires it (``None`` until recorded).
        next_fire_times: ISO 8601 times in the schedule's time zone (empty when paused).
    """

    id: int
    pipeline: str
    cron: str | None
    interval_seconds: int | None
    timezone: str
    active: bool
    deployment_id: str | None
    next_fire_times: tuple[str, ...]
