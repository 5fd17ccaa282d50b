"""Business calendars: weekly working hours, holidays and extra working days, and the one rule
that says whether a tenant is open at an instant and when that next changes.

Hours are wall-clock times in the calendar's time zone: ``09:00-18:00`` means nine to six by the
clocks on the wall, in winter and in summer. A range is half-open (open at 09:00, closed at
18:00); ``24:00`` ends a range at midnight; a range never crosses midnight (write
``22:00-24:00`` on one day and ``00:00-06:00`` on the next). On a given date a holiday wins
over an extra working day, which wins over the weekly hours.

Across DST changes the wall clock decides: on the night clocks spring forward, a range starting
in the skipped hour opens when the clocks jump; on the night they fall back, the repeated hour
is evaluated (twice) by its wall time. ``next_change`` is the first instant after ``at`` at
which that evaluation flips between open and closed.
"""

from __future__ import annotations

import functools
import heapq
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callmesh.core.errors import InvalidInput

CALENDAR_PREFIX = "cal"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MAX_NAME = 100
MAX_RANGES_PER_DAY = 24
MAX_DATED = 1000
# How far ahead next_change looks (a year of holidays and then some); past it: None, "never".
HORIZON_DAYS = 400
_TIME_RE = re.compile(r"^(\d{2}):(\d{2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ZONE_RE = re.compile(r"^[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*$")

REASON_OPEN = "working hours"
REASON_CLOSED = "closed"


# ---------------------------------------------------------------------------------------------
# Rules of the input


@dataclass(frozen=True, order=True)
class TimeRange:
    """Open from ``start`` to ``end`` (minutes after midnight, end excluded; 1440 is 24:00)."""

    start: int
    end: int

    def contains(self, minute: int) -> bool:
        """Whether the minute of the day falls in the range."""
        return self.start <= minute < self.end

    def texts(self) -> list[str]:
        """``["HH:MM", "HH:MM"]``."""
        return [_hhmm(self.start), _hhmm(self.end)]

    def stored(self) -> str:
        """``"HH:MM-HH:MM"``: FerretDB 1.24 cannot store arrays of arrays."""
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _stored_ranges(ranges: tuple[TimeRange, ...]) -> list[str]:
    return [r.stored() for r in ranges]


def _read_ranges(stored: Any) -> list[list[str]]:
    """Stored ranges (``"09:00-18:00"``) as the input form (``["09:00", "18:00"]``)."""
    return [text.split("-", 1) for text in stored or ()]


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _minute(text: Any) -> int | None:
    """Minutes after midnight of ``HH:MM`` (00:00-24:00), or None if it is not such a time."""
    if not isinstance(text, str):
        return None
    match = _TIME_RE.match(text)
    if match is None:
        return None
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes != 0):
        return None
    return hours * 60 + minutes


def parse_ranges(raw: Sequence[Any], field: str) -> tuple[TimeRange, ...]:
    """``[["09:00", "12:00"], ["13:00", "18:00"]]``: times HH:MM, each range ordered, the ranges
    in order and not overlapping; errors name ``field[i]``."""
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise InvalidInput(field, 'must be a list of ["HH:MM", "HH:MM"] ranges')
    if len(raw) > MAX_RANGES_PER_DAY:
        raise InvalidInput(field, f"must hold at most {MAX_RANGES_PER_DAY} ranges")
    ranges: list[TimeRange] = []
    for index, item in enumerate(raw):
        where = f"{field}[{index}]"
        if isinstance(item, str | bytes) or not isinstance(item, Sequence) or len(item) != 2:
            raise InvalidInput(where, 'must be a pair of times ["HH:MM", "HH:MM"]')
        start, end = _minute(item[0]), _minute(item[1])
        if start is None or end is None:
            raise InvalidInput(where, "times must be HH:MM, from 00:00 to 24:00")
        if start >= end:
            raise InvalidInput(where, "must start before it ends (use 24:00 for midnight)")
        if ranges and start < ranges[-1].end:
            raise InvalidInput(
                where, "must start after the previous range ends (ordered, not overlapping)"
            )
        ranges.append(TimeRange(start, end))
    return tuple(ranges)


def parse_date(text: Any, field: str) -> date:
    """A calendar date written ``YYYY-MM-DD``."""
    if not isinstance(text, str) or not _DATE_RE.match(text):
        raise InvalidInput(field, "must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(field, "must be a valid date YYYY-MM-DD") from None


def check_time_zone(name: str, field: str = "time_zone") -> str:
    """An IANA time zone name (``Asia/Shanghai``, ``UTC``)."""
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not _ZONE_RE.match(name):
        raise InvalidInput(field, "must be an IANA time zone, e.g. Europe/Berlin")
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(field, "must be an IANA time zone, e.g. Europe/Berlin") from None
    return name


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def check_calendar_name(value: str, field: str = "name") -> str:
    """A calendar name: 1-100 characters once trimmed, no control characters."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput(field, "must not be empty")
    if len(text) > MAX_NAME:
        raise InvalidInput(field, f"must be at most {MAX_NAME} characters")
    if any(not c.isprintable() for c in text):
        raise InvalidInput(field, "must not contain control characters")
    return text


@dataclass(frozen=True)
class Holiday:
    """A date the tenant is closed (``closed``) or keeps special ``hours``."""

    day: date
    name: str
    closed: bool = True
    hours: tuple[TimeRange, ...] = ()

    def record(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "date": self.day.isoformat(),
            "name": self.name,
            "closed": self.closed,
            "hours": _stored_ranges(self.hours),
        }


@dataclass(frozen=True)
class ExtraDay:
    """An extra working day (a weekend made a working day) with its hours."""

    day: date
    name: str
    hours: tuple[TimeRange, ...]

    def record(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "date": self.day.isoformat(),
            "name": self.name,
            "hours": _stored_ranges(self.hours),
        }


@dataclass(frozen=True)
class Rules:
    """What a calendar says about time: weekly hours, holidays, extra working days."""

    weekly: Mapping[str, tuple[TimeRange, ...]]
    holidays: tuple[Holiday, ...] = ()
    exceptions: tuple[ExtraDay, ...] = ()

    @functools.cached_property
    def _holidays(self) -> dict[date, Holiday]:
        return {h.day: h for h in self.holidays}

    @functools.cached_property
    def _extra(self) -> dict[date, ExtraDay]:
        return {x.day: x for x in self.exceptions}

    def day(self, day: date) -> tuple[tuple[TimeRange, ...], str | None]:
        """The hours of a date and, on a holiday, the holiday's name."""
        holiday = self._holidays.get(day)
        if holiday is not None:
            return holiday.hours, holiday.name
        extra = self._extra.get(day)
        if extra is not None:
            return extra.hours, None
        return self.weekly.get(WEEKDAYS[day.weekday()], ()), None


def parse_rules(
    weekly: Mapping[str, Any],
    holidays: Sequence[Mapping[str, Any]] = (),
    exceptions: Sequence[Mapping[str, Any]] = (),
) -> Rules:
    """Check a calendar's hours, holidays and extra days; errors name the field and the rule."""
    unknown = sorted(set(weekly) - set(WEEKDAYS))
    if unknown:
        raise InvalidInput(f"weekly.{unknown[0]}", f"must be one of {', '.join(WEEKDAYS)}")
    week = {day: parse_ranges(weekly.get(day) or [], f"weekly.{day}") for day in WEEKDAYS}
    if len(holidays) > MAX_DATED:
        raise InvalidInput("holidays", f"must hold at most {MAX_DATED} dates")
    if len(exceptions) > MAX_DATED:
        raise InvalidInput("exceptions", f"must hold at most {MAX_DATED} dates")
    seen: dict[date, str] = {}
    parsed_holidays: list[Holiday] = []
    for index, raw in enumerate(holidays):
        where = f"holidays[{index}]"
        day = _dated(raw, where, seen)
        closed = raw.get("closed", True)
        hours = parse_ranges(raw.get("hours") or [], f"{where}.hours")
        if closed and hours:
            raise InvalidInput(f"{where}.hours", "must be empty on a closed holiday")
        if not closed and not hours:
            raise InvalidInput(f"{where}.hours", "must hold the special hours when not closed")
        name = check_calendar_name(raw.get("name", ""), f"{where}.name")
        parsed_holidays.append(Holiday(day, name, bool(closed), hours))
    parsed_extra: list[ExtraDay] = []
    for index, raw in enumerate(exceptions):
        where = f"exceptions[{index}]"
        day = _dated(raw, where, seen)
        hours = parse_ranges(raw.get("hours") or [], f"{where}.hours")
        if not hours:
            raise InvalidInput(f"{where}.hours", "must hold the hours of the extra working day")
        name = raw.get("name") or "extra working day"
        parsed_extra.append(ExtraDay(day, check_calendar_name(name, f"{where}.name"), hours))
    return Rules(
        weekly=week,
        holidays=tuple(sorted(parsed_holidays, key=lambda h: h.day)),
        exceptions=tuple(sorted(parsed_extra, key=lambda x: x.day)),
    )


def _dated(raw: Mapping[str, Any], where: str, seen: dict[date, str]) -> date:
    day = parse_date(raw.get("date"), f"{where}.date")
    if day in seen:
        raise InvalidInput(f"{where}.date", f"is already listed at {seen[day]}")
    seen[day] = where
    return day


# ---------------------------------------------------------------------------------------------
# The calendar


@dataclass(frozen=True)
class Calendar:
    """A tenant's business calendar."""

    calendar_id: str
    tenant_id: str
    name: str
    time_zone: str
    rules: Rules
    created_at: datetime
    updated_at: datetime
    version: int = 1

    def changed(self, now: datetime, **changes: Any) -> Calendar:
        """A new version of the calendar with ``changes``."""
        return replace(self, **changes, updated_at=now, version=self.version + 1)

    def record(self) -> dict[str, Any]:
        """The stored document (``calendars`` collection); ranges as ``"HH:MM-HH:MM"``."""
        return {
            "_id": self.calendar_id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "time_zone": self.time_zone,
            "weekly": {day: _stored_ranges(self.rules.weekly[day]) for day in WEEKDAYS},
            "holidays": [h.record() for h in self.rules.holidays],
            "exceptions": [x.record() for x in self.rules.exceptions],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> Calendar:
        """Read a stored document (it was checked when written)."""
        return cls(
            calendar_id=doc["_id"],
            tenant_id=doc["tenant_id"],
            name=doc["name"],
            time_zone=doc["time_zone"],
            rules=parse_rules(
                {day: _read_ranges(hours) for day, hours in (doc.get("weekly") or {}).items()},
                [{**h, "hours": _read_ranges(h.get("hours"))} for h in doc.get("holidays") or ()],
                [{**x, "hours": _read_ranges(x.get("hours"))} for x in doc.get("exceptions") or ()],
            ),
            created_at=doc["created_at"],
            updated_at=doc["updated_at"],
            version=int(doc.get("version", 1)),
        )


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class OpenState:
    """Whether a calendar is open at an instant, why, and when that next changes (None: never
    within ``HORIZON_DAYS``)."""

    open: bool
    reason: str
    next_change: datetime | None


def state_at(rules: Rules, zone: ZoneInfo, at: datetime) -> tuple[bool, str]:
    """Open or not at the instant ``at`` (aware), and the reason."""
    local = at.astimezone(zone)
    hours, holiday = rules.day(local.date())
    minute = local.hour * 60 + local.minute
    is_open = any(r.contains(minute) for r in hours)
    if holiday is not None:
        return is_open, f"holiday: {holiday}"
    return is_open, REASON_OPEN if is_open else REASON_CLOSED


def evaluate(
    rules: Rules, time_zone: str, at: datetime, *, horizon_days: int = HORIZON_DAYS
) -> OpenState:
    """Whether the calendar is open at ``at``, why, and the next instant that changes."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("at", "must include a UTC offset (e.g. 2026-10-01T09:00:00+08:00)")
    zone = _zone(check_time_zone(time_zone))
    at = at.astimezone(UTC)
    is_open, reason = state_at(rules, zone, at)
    if _never_changes(rules, at.astimezone(zone).date()):
        return OpenState(is_open, reason, None)
    previous = at
    for candidate in _candidates(rules, zone, at.astimezone(zone).date(), horizon_days):
        if candidate <= at:
            continue
        # A DST jump between two candidates moves the wall clock without crossing a boundary
        # we listed: the state may flip at the jump itself.
        jump = _transition(zone, previous, candidate)
        for instant in (jump, candidate):
            if (
                instant is not None
                and instant > at
                and state_at(rules, zone, instant)[0] != is_open
            ):
                return OpenState(is_open, reason, instant)
        previous = candidate
    return OpenState(is_open, reason, None)


def _never_changes(rules: Rules, first: date) -> bool:
    """Open around the clock, or never, every day from ``first`` on (skips a year's scan)."""
    if any(h.day >= first for h in rules.holidays) or any(x.day >= first for x in rules.exceptions):
        return False
    days = {rules.weekly.get(day, ()) for day in WEEKDAYS}
    return days in ({()}, {(TimeRange(0, MINUTES_PER_DAY),)})


def _candidates(rules: Rules, zone: ZoneInfo, first: date, days: int) -> Iterator[datetime]:
    """Every instant whose wall time is a boundary of its day (or a midnight), in order.

    Days are generated one ahead: a clock set back at night can put a day's late instants
    after the next day's midnight, but never after the day after's.
    """
    heap: list[datetime] = []
    for offset in (0, 1):
        for instant in _day_instants(rules, zone, first + timedelta(days=offset)):
            heapq.heappush(heap, instant)
    for offset in range(2, days + 2):
        upcoming = _day_instants(rules, zone, first + timedelta(days=offset))
        bound = min(upcoming) if upcoming else None
        while heap and (bound is None or heap[0] < bound):
            yield heapq.heappop(heap)
        for instant in upcoming:
            heapq.heappush(heap, instant)
    while heap:
        yield heapq.heappop(heap)


def _day_instants(rules: Rules, zone: ZoneInfo, day: date) -> list[datetime]:
    hours, _ = rules.day(day)
    minutes = {0, *(r.start for r in hours), *(r.end for r in hours if r.end < MINUTES_PER_DAY)}
    instants: list[datetime] = []
    for minute in minutes:
        naive = datetime.combine(day, time(minute // 60, minute % 60))
        for fold in (0, 1):
            instant = naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
            # Keep only real occurrences of that wall time: a skipped time (spring forward)
            # maps to none (the jump is found by _transition), a repeated one to two.
            if instant.astimezone(zone).replace(tzinfo=None) == naive and instant not in instants:
                instants.append(instant)
    return instants


def _transition(zone: ZoneInfo, after: datetime, until: datetime) -> datetime | None:
    """The instant in ``(after, until]`` where the zone's UTC offset changes, if it does."""
    before_offset = after.astimezone(zone).utcoffset()
    target = until.astimezone(zone).utcoffset()
    if before_offset == target:
        return None
    low, high = math.floor(after.timestamp()), math.ceil(until.timestamp())
    # Offsets change on whole seconds: bisect to the first second with the new offset.
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
