"""When a schedule fires: its timing checked the way Prefect reads it, and its next firings."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import ValidationError

from orca_flows.db.base import utcnow
from orca_flows.db.models import Schedule
from orca_flows.errors import InvalidInputError
from orca_flows.prefect_adapter.deployments import prefect_schedule
from orca_flows.settings import OrcaSettings

__all__ = ["check_timing", "next_fire_times"]

_CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-6 or SUN-SAT"),
)
_CRON_EXAMPLE = "e.g. '0 3 * * *' (every day at 03:00) or '*/15 * * * *' (every 15 minutes)"


def _prefect_accepts_cron(expression: str) -> bool:
    try:
        prefect_schedule(expression, None, "UTC", utcnow())
    except ValidationError:
        return False
    return True


def _check_cron(cron: str) -> None:
    fields = cron.split()
    if len(fields) != 5 and not (len(fields) == 1 and cron.strip().startswith("@")):
        raise InvalidInputError(
            "cron",
            f"cron expression {cron!r} has {len(fields)} field(s); give exactly 5 "
            f"(minute hour day-of-month month day-of-week), {_CRON_EXAMPLE}.",
        )
    if len(fields) == 5:
        for index, (name, allowed) in enumerate(_CRON_FIELDS):
            probe = ["*"] * 5
            probe[index] = fields[index]
            if not _prefect_accepts_cron(" ".join(probe)):
                raise InvalidInputError(
                    "cron",
                    f"cron expression {cron!r}: the {name} field {fields[index]!r} is not "
                    f"valid; it takes {allowed}, with lists (1,5), ranges (1-5) and steps (*/5).",
                )
    if not _prefect_accepts_cron(cron):
        raise InvalidInputError("cron", f"cron expression {cron!r} is not valid; {_CRON_EXAMPLE}.")
    try:
        _fire_times(cron, None, "UTC", utcnow(), 1, utcnow())
    except ValueError as error:  # croniter: no matching date (e.g. 31 February)
        raise InvalidInputError(
            "cron", f"cron expression {cron!r} never fires ({error}); {_CRON_EXAMPLE}."
        ) from error


def _check_timezone(timezone: str) -> None:
    try:
        ZoneInfo(timezone)
        prefect_schedule("* * * * *", None, timezone, utcnow())
    except (ZoneInfoNotFoundError, ValueError):  # pydantic's ValidationError is a ValueError
        matches = [name for name in available_timezones() if name.lower() == timezone.lower()]
        hint = f"did you mean {matches[0]}? " if matches else ""
        raise InvalidInputError(
            "timezone",
            f"time zone {timezone!r} is not an IANA time zone name; {hint}use e.g. UTC, "
            "Europe/Paris or America/New_York.",
        ) from None


def _check_interval(settings: OrcaSettings, seconds: int) -> None:
    # ORCA_MIN_SCHEDULE_INTERVAL_SECONDS (tests lower it); 60 s until the setting exists.
    minimum = settings.min_schedule_interval_seconds
    if seconds <= 0:
        raise InvalidInputError(
            "interval",
            f"interval must be a positive number of seconds, not {seconds}; e.g. 3600 for hourly.",
        )
    if seconds < minimum:
        raise InvalidInputError(
            "interval",
            f"interval {seconds} s is shorter than the minimum of {minimum} s: a schedule fires "
            f"at most once every {minimum} s (ORCA_MIN_SCHEDULE_INTERVAL_SECONDS).",
        )


def check_timing(
    settings: OrcaSettings, cron: str | None, interval_seconds: int | None, timezone: str
) -> None:
    """Refuse a timing Prefect could not honour, with a message that says what is wrong.

    Raises:
        InvalidInputError: Neither or both of cron and interval, a bad cron expression, an
            unknown time zone or an interval below the minimum.
    """
    if (cron is None) == (interval_seconds is None):
        raise InvalidInputError(
            "schedule",
            "give either a cron expression (--cron '0 3 * * *') or an interval in seconds "
            "(--interval 3600), not both or neither.",
        )
    _check_timezone(timezone)
    if cron is not None:
        _check_cron(cron)
    if interval_seconds is not None:
        _check_interval(settings, interval_seconds)


def _fire_times(
    cron: str | None,
    interval_seconds: int | None,
    timezone: str,
    anchor: datetime,
    count: int,
    start: datetime,
) -> list[datetime]:
    # Prefect's server-side schedule classes: the very times its scheduler plans, DST rules
    # included. Raises ValueError (croniter) when a cron expression never matches.
    from prefect.server.schemas import schedules as server_schedules
    from prefect.utilities.asyncutils import run_coro_as_sync

    schedule: server_schedules.CronSchedule | server_schedules.IntervalSchedule
    if cron is not None:
        schedule = server_schedules.CronSchedule(cron=cron, timezone=timezone)
    else:
        schedule = server_schedules.IntervalSchedule(
            interval=timedelta(seconds=interval_seconds or 0),
            anchor_date=anchor,  # type: ignore[arg-type]  # pydantic takes a datetime
            timezone=timezone,
        )
    dates: list[datetime] = run_coro_as_sync(schedule.get_dates(n=count, start=start)) or []
    zone = ZoneInfo(timezone)
    return [datetime.fromtimestamp(date.timestamp(), zone) for date in dates]


def next_fire_times(
    schedule: Schedule, count: int = 3, *, after: datetime | None = None
) -> list[datetime]:
    """The schedule's next ``count`` firings at or after ``after`` (now), in its time zone.

    A paused schedule has none.
    """
    if not schedule.active:
        return []
    return _fire_times(
        schedule.cron,
        schedule.interval_seconds,
        schedule.timezone,
        schedule.created_at,
        count,
        after or utcnow(),
    )
