"""Business calendars: the input rules and the one open/closed rule, across time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callmesh.admin.domain.calendars import (
    Calendar,
    Rules,
    check_time_zone,
    evaluate,
    parse_rules,
)
from callmesh.core.errors import InvalidInput

NINE_TO_SIX = [["09:00", "18:00"]]
WEEKDAYS_9_18 = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), NINE_TO_SIX)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def rules(weekly: dict[str, Any] | None = None, **dated: Any) -> Rules:
    return parse_rules(weekly if weekly is not None else WEEKDAYS_9_18, **dated)


# -- input rules


@pytest.mark.parametrize(
    ("weekly", "field", "rule"),
    [
        ({"mon": [["9:00", "18:00"]]}, "weekly.mon[0]", "times must be HH:MM"),
        ({"mon": [["09:00", "24:30"]]}, "weekly.mon[0]", "times must be HH:MM"),
        ({"tue": [["09:60", "18:00"]]}, "weekly.tue[0]", "times must be HH:MM"),
        ({"wed": [["18:00", "09:00"]]}, "weekly.wed[0]", "must start before it ends"),
        ({"thu": [["09:00", "09:00"]]}, "weekly.thu[0]", "must start before it ends"),
        ({"fri": [["09:00", "13:00"], ["12:00", "18:00"]]}, "weekly.fri[1]", "not overlapping"),
        ({"sat": [["13:00", "18:00"], ["09:00", "12:00"]]}, "weekly.sat[1]", "ordered"),
        ({"sun": [["09:00"]]}, "weekly.sun[0]", "pair of times"),
        ({"mon": "09:00-18:00"}, "weekly.mon", "list of"),
        ({"monday": []}, "weekly.monday", "must be one of"),
    ],
)
def test_weekly_hours_are_checked_naming_the_day_and_the_range(
    weekly: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rules(weekly)
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_touching_ranges_and_a_range_to_midnight_are_allowed() -> None:
    parsed = parse_rules({"mon": [["00:00", "12:00"], ["12:00", "24:00"]]})
    assert [r.texts() for r in parsed.weekly["mon"]] == [["00:00", "12:00"], ["12:00", "24:00"]]
    assert parsed.weekly["tue"] == ()


@pytest.mark.parametrize(
    ("dated", "field", "rule"),
    [
        ({"holidays": [{"date": "2026-02-30", "name": "x"}]}, "holidays[0].date", "valid date"),
        ({"holidays": [{"date": "1/10/2026", "name": "x"}]}, "holidays[0].date", "YYYY-MM-DD"),
        ({"holidays": [{"date": "2026-10-01", "name": " "}]}, "holidays[0].name", "empty"),
        (
            {"holidays": [{"date": "2026-10-01", "name": "x", "hours": NINE_TO_SIX}]},
            "holidays[0].hours",
            "empty on a closed holiday",
        ),
        (
            {"holidays": [{"date": "2026-10-01", "name": "x", "closed": False}]},
            "holidays[0].hours",
            "special hours",
        ),
        (
            {
                "holidays": [
                    {"date": "2026-10-01", "name": "a"},
                    {"date": "2026-10-01", "name": "b"},
                ]
            },
            "holidays[1].date",
            "already listed at holidays[0]",
        ),
        (
            {
                "holidays": [{"date": "2026-10-10", "name": "a"}],
                "exceptions": [{"date": "2026-10-10", "hours": NINE_TO_SIX}],
            },
            "exceptions[0].date",
            "already listed at holidays[0]",
        ),
        ({"exceptions": [{"date": "2026-10-10", "hours": []}]}, "exceptions[0].hours", "hours"),
    ],
)
def test_holidays_and_extra_days_are_checked(dated: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rules({}, **dated)
    assert caught.value.field == field
    assert rule in caught.value.rule


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../etc/passwd", "", "Europe/Berlin/x"])
def test_unknown_time_zones_are_refused(zone: str) -> None:
    with pytest.raises(InvalidInput, match="time_zone"):
        check_time_zone(zone)


def test_a_calendar_survives_its_stored_form() -> None:
    parsed = rules(
        holidays=[
            {"date": "2026-12-24", "name": "Eve", "closed": False, "hours": [["09:00", "12:00"]]}
        ],
        exceptions=[{"date": "2026-09-27", "name": "make-up day", "hours": NINE_TO_SIX}],
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    calendar = Calendar("cal_1", "acme", "Main", "Asia/Shanghai", parsed, now, now)
    record = calendar.record()
    # Arrays of arrays cannot be stored on FerretDB 1.24: ranges are kept as strings.
    assert record["weekly"]["mon"] == ["09:00-18:00"]
    assert record["holidays"][0]["hours"] == ["09:00-12:00"]
    assert Calendar.from_record(record) == calendar


# -- evaluation


def test_open_in_working_hours_until_the_end_of_the_range() -> None:
    state = evaluate(rules(), "Asia/Shanghai", utc("2026-11-02T10:00:00+08:00"))
    assert state.open
    assert state.reason == "working hours"
    assert state.next_change == utc("2026-11-02T18:00:00+08:00")


def test_closed_at_night_until_the_next_working_morning() -> None:
    friday_night = evaluate(rules(), "Asia/Shanghai", utc("2026-11-06T20:00:00+08:00"))
    assert not friday_night.open
    assert friday_night.reason == "closed"
    assert friday_night.next_change == utc("2026-11-09T09:00:00+08:00")


def test_the_end_of_a_range_is_closed_and_its_start_is_open() -> None:
    assert not evaluate(rules(), "UTC", utc("2026-11-02T18:00:00+00:00")).open
    assert evaluate(rules(), "UTC", utc("2026-11-02T09:00:00+00:00")).open
    assert not evaluate(rules(), "UTC", utc("2026-11-02T08:59:59+00:00")).open


def test_a_holiday_closes_the_day_and_names_itself() -> None:
    national = rules(
        holidays=[
            {"date": "2026-10-01", "name": "National Day"},
            {"date": "2026-10-02", "name": "National Day"},
        ]
    )
    state = evaluate(national, "Asia/Shanghai", utc("2026-10-01T10:00:00+08:00"))
    assert not state.open
    assert state.reason == "holiday: National Day"
    assert state.next_change == utc("2026-10-05T09:00:00+08:00")


def test_special_hours_on_a_holiday_open_the_tenant_for_a_while() -> None:
    eve = rules(
        holidays=[
            {
                "date": "2026-12-24",
                "name": "Christmas Eve",
                "closed": False,
                "hours": [["09:00", "12:00"]],
            }
        ]
    )
    morning = evaluate(eve, "Europe/Paris", utc("2026-12-24T10:00:00+01:00"))
    assert morning.open
    assert morning.reason == "holiday: Christmas Eve"
    assert morning.next_change == utc("2026-12-24T12:00:00+01:00")
    afternoon = evaluate(eve, "Europe/Paris", utc("2026-12-24T15:00:00+01:00"))
    assert not afternoon.open
    assert afternoon.reason == "holiday: Christmas Eve"
    assert afternoon.next_change == utc("2026-12-25T09:00:00+01:00")


def test_an_extra_working_day_opens_a_weekend_day() -> None:
    make_up = rules(exceptions=[{"date": "2026-09-27", "hours": [["10:00", "16:00"]]}])
    sunday = evaluate(make_up, "Asia/Shanghai", utc("2026-09-27T11:00:00+08:00"))
    assert sunday.open
    assert sunday.reason == "working hours"
    assert sunday.next_change == utc("2026-09-27T16:00:00+08:00")
    saturday = evaluate(make_up, "Asia/Shanghai", utc("2026-09-26T11:00:00+08:00"))
    assert saturday.next_change == utc("2026-09-27T10:00:00+08:00")


def test_the_morning_after_clocks_spring_forward_opens_by_the_wall_clock() -> None:
    # Berlin goes from CET (+1) to CEST (+2) on Sunday 29 March 2026 at 02:00.
    sunday = evaluate(rules(), "Europe/Berlin", utc("2026-03-29T00:30:00+00:00"))
    assert not sunday.open
    assert sunday.next_change == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # 09:00 CEST


def test_a_range_starting_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    night = rules({"sun": [["02:30", "05:00"]]})
    before = evaluate(night, "Europe/Berlin", utc("2026-03-29T00:30:00+00:00"))  # 01:30 CET
    assert not before.open
    assert before.next_change == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    during = evaluate(night, "Europe/Berlin", before.next_change)
    assert during.open
    assert during.next_change == datetime(2026, 3, 29, 3, 0, tzinfo=UTC)


def test_the_evening_after_clocks_fall_back_closes_by_the_wall_clock() -> None:
    # Berlin goes from CEST (+2) back to CET (+1) on Sunday 25 October 2026 at 03:00.
    weekend = rules({"sun": [["08:00", "20:00"]]})
    state = evaluate(weekend, "Europe/Berlin", utc("2026-10-24T23:00:00+00:00"))  # 01:00 CEST
    assert not state.open
    assert state.next_change == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)  # 08:00 CET
    opened = evaluate(weekend, "Europe/Berlin", state.next_change)
    assert opened.next_change == datetime(2026, 10, 25, 19, 0, tzinfo=UTC)  # 20:00 CET


def test_the_repeated_hour_counts_twice_by_its_wall_time() -> None:
    # New York repeats 01:00-02:00 on Sunday 1 November 2026.
    short = rules({"sun": [["01:00", "01:30"]]})
    first = evaluate(short, "America/New_York", utc("2026-11-01T01:10:00-04:00"))
    assert first.open
    assert first.next_change == utc("2026-11-01T01:30:00-04:00")
    gap = evaluate(short, "America/New_York", first.next_change)
    assert not gap.open
    assert gap.next_change == utc("2026-11-01T01:00:00-05:00")


def test_ranges_that_meet_at_midnight_are_one_opening() -> None:
    around_the_clock = rules({day: [["00:00", "24:00"]] for day in ("fri", "sat")})
    state = evaluate(around_the_clock, "UTC", utc("2026-11-06T12:00:00+00:00"))
    assert state.open
    assert state.next_change == utc("2026-11-08T00:00:00+00:00")


def test_a_calendar_that_never_changes_says_so() -> None:
    always = rules(
        {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    )
    assert evaluate(always, "UTC", utc("2026-11-06T12:00:00+00:00")).next_change is None
    never = evaluate(rules({}), "UTC", utc("2026-11-06T12:00:00+00:00"))
    assert not never.open
    assert never.next_change is None


def test_an_instant_without_a_utc_offset_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        evaluate(rules(), "UTC", datetime(2026, 11, 2, 10, 0))
    assert caught.value.field == "at"


def test_the_answer_is_the_same_whatever_offset_the_instant_is_written_in() -> None:
    moment = datetime(2026, 11, 2, 2, 30, tzinfo=UTC)
    in_tokyo = moment.astimezone(datetime.fromisoformat("2026-11-02T11:30:00+09:00").tzinfo)
    assert evaluate(rules(), "Asia/Shanghai", moment) == evaluate(
        rules(), "Asia/Shanghai", in_tokyo
    )
    assert evaluate(rules(), "Asia/Shanghai", moment + timedelta(hours=8)).open is False
