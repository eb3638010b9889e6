"""How values read on screen: run states, moments and durations."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from orca_flows.domain.states import RunState

__all__ = ["STATE_ICONS", "duration", "fire_time", "moment", "state_label"]

# Streamlit's bundled Material icons, not emoji: they render without an emoji font.
STATE_ICONS: dict[str, tuple[str, str]] = {  # RunState is a StrEnum: its values are keys
    RunState.QUEUED: ("gray", ":material/schedule:"),
    RunState.RUNNING: ("blue", ":material/directions_run:"),
    # Stopped, its process not yet confirmed dead: its key still waits.
    RunState.CANCELLING: ("orange", ":material/hourglass_top:"),
    RunState.SUCCEEDED: ("green", ":material/check_circle:"),
    RunState.FAILED: ("red", ":material/error:"),
    RunState.TIMED_OUT: ("orange", ":material/timer_off:"),
    RunState.CANCELLED: ("gray", ":material/block:"),
}


def state_label(state: RunState | str) -> str:
    """The state as coloured Markdown with its icon (titles, metrics, markdown)."""
    color, icon = STATE_ICONS.get(state, ("gray", ""))
    return f":{color}[{icon} {state}]"


def moment(value: datetime | str | None) -> str:
    """A UTC moment to the second, or an em dash when it has not happened."""
    if value is None:
        return "—"
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``4.2 s``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fire_time(iso: str, timezone: str, now: datetime) -> str:
    """``Thu 26 Nov 2026, 03:00 CET (in 13 h 00 min)``: a firing as people say it."""
    when = datetime.fromisoformat(iso).astimezone(ZoneInfo(timezone))
    ahead = (when - now).total_seconds()
    relative = f"in {duration(ahead)}" if ahead >= 0 else f"{duration(-ahead)} ago"
    return f"{when.strftime('%a %d %b %Y, %H:%M')} {when.tzname()} ({relative})"
