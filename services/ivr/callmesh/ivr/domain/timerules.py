"""Working hours from a time node's own rules: open, closed or holiday at an instant."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from callmesh.ivr.domain.flow import TimeConfig

__all__ = ["state_at"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(text: str) -> time:
    if text == "24:00":
        return time.max
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def state_at(config: TimeConfig, at: datetime, default_tz: str) -> str:
    """ "open", "closed" or "holiday" at ``at`` (aware) in the node's (or the tenant's) zone."""
    local = at.astimezone(ZoneInfo(config.time_zone or default_tz or "UTC"))
    if local.date().isoformat() in config.holidays:
        return "holiday"
    day = _DAYS[local.weekday()]
    yesterday = _DAYS[(local.weekday() - 1) % 7]
    now = local.time().replace(tzinfo=None)
    for rule in config.rules:
        start, end = _clock(rule.start), _clock(rule.end)
        if start <= end:
            if day in rule.days and start <= now < end:
                return "open"
        else:  # past midnight: the evening part today, the morning part from yesterday's rule
            if (day in rule.days and now >= start) or (yesterday in rule.days and now < end):
                return "open"
    return "closed"
