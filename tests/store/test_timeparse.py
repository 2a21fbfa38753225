"""Times and repeats in the owner's words, right across daylight-saving changes."""

from __future__ import annotations

import datetime as dt

import pytest

from tars import timeparse
from tars.timeparse import TimeParseError

UTC = dt.UTC
BUDAPEST = "Europe/Budapest"
# Saturday 29 March 2025, 10:00 CET (UTC+1). Clocks go to CEST (UTC+2) at 02:00 on the 30th.
NOW = dt.datetime(2025, 3, 29, 9, 0, tzinfo=UTC)


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("tomorrow 2pm", utc(2025, 3, 30, 12, 0)),  # 14:00 CEST, not 13:00 (the offset of *now*)
        ("tomorrow at 14:30", utc(2025, 3, 30, 12, 30)),
        ("2pm tomorrow", utc(2025, 3, 30, 12, 0)),
        ("in 20 minutes", utc(2025, 3, 29, 9, 20)),
        ("in an hour and a half", utc(2025, 3, 29, 10, 30)),
        ("1h30m", utc(2025, 3, 29, 10, 30)),
        ("in 3 days", utc(2025, 4, 1, 8, 0)),  # 10:00 wall-clock three days on, now in CEST
        ("in 36 hours", utc(2025, 3, 30, 21, 0)),  # hours are exact, not wall-clock
        ("next Friday at 9", utc(2025, 4, 4, 7, 0)),
        ("friday 9am", utc(2025, 4, 4, 7, 0)),
        ("saturday 11am", utc(2025, 3, 29, 10, 0)),  # today, still ahead
        ("saturday 9am", utc(2025, 4, 5, 7, 0)),  # today's has passed: next week's
        ("next saturday", utc(2025, 4, 5, 7, 0)),  # a day without a time means 09:00
        ("tonight at 8:30", utc(2025, 3, 29, 19, 30)),
        ("at 9", utc(2025, 3, 30, 7, 0)),  # 09:00 today has passed
        ("noon", utc(2025, 3, 29, 11, 0)),
        ("2025-04-01T09:00", utc(2025, 4, 1, 7, 0)),
        ("2025-04-01 09:00+00:00", utc(2025, 4, 1, 9, 0)),
        ("2025-04-01", utc(2025, 4, 1, 7, 0)),
        ("April 5 at 10am", utc(2025, 4, 5, 8, 0)),  # dateparser, as wall-clock time
    ],
)
def test_points_in_time(words: str, expected: dt.datetime) -> None:
    assert timeparse.parse_time(words, BUDAPEST, NOW) == expected


@pytest.mark.parametrize("words", ["blah blah", "25:00", "tomorrow at 13pm", ""])
def test_nonsense_is_refused_with_examples(words: str) -> None:
    with pytest.raises(TimeParseError) as caught:
        timeparse.parse_time(words, BUDAPEST, NOW)
    assert "tomorrow 2pm" in (caught.value.hint or "")


def test_the_past_is_refused_for_new_things() -> None:
    with pytest.raises(TimeParseError, match=r"'yesterday 3pm' is in the past \(Fri 28 Mar 2025 15:00"):
        timeparse.parse_future("yesterday 3pm", BUDAPEST, NOW)


def test_a_time_in_the_spring_gap_moves_forward() -> None:
    # 02:30 on 30 March does not exist in Budapest; it is read as 03:30 CEST.
    assert timeparse.parse_time("2025-03-30T02:30", BUDAPEST, NOW) == utc(2025, 3, 30, 1, 30)


def test_tars_now_stands_in_for_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARS_NOW", "2025-03-29T10:00:00+01:00")
    assert timeparse.clock_now() == NOW
    monkeypatch.setenv("TARS_NOW", "soon")
    with pytest.raises(TimeParseError, match="TARS_NOW"):
        timeparse.clock_now()


@pytest.mark.parametrize(
    ("words", "rule"),
    [
        ("daily", "FREQ=DAILY"),
        ("weekly", "FREQ=WEEKLY"),
        ("every weekday", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        ("every monday at 9", "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0"),
        (
            "every Monday and Thursday at 8:30am",
            "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=8;BYMINUTE=30;BYSECOND=0",
        ),
        ("every 2 hours", "FREQ=HOURLY;INTERVAL=2"),
        ("every other week", "FREQ=WEEKLY;INTERVAL=2"),
        ("every day at 7pm", "FREQ=DAILY;BYHOUR=19;BYMINUTE=0;BYSECOND=0"),
        ("RRULE:freq=weekly;byday=mo,th", "FREQ=WEEKLY;BYDAY=MO,TH"),
        (
            "FREQ=DAILY;UNTIL=20250405",
            "FREQ=DAILY;UNTIL=20250405T215959Z",
        ),  # end of that day, local
    ],
)
def test_repeats_from_words_or_rrules(words: str, rule: str) -> None:
    assert timeparse.parse_repeat(words, BUDAPEST).rule == rule


@pytest.mark.parametrize("words", ["every blue moon", "FREQ=SOMETIMES", "every hour at 9", "every day at 25"])
def test_bad_repeats_are_refused(words: str) -> None:
    with pytest.raises(TimeParseError):
        timeparse.parse_repeat(words, BUDAPEST)


def test_repeats_keep_wall_clock_time_across_dst() -> None:
    start = utc(2025, 3, 29, 8, 0)  # 09:00 CET
    rule = timeparse.parse_repeat("daily", BUDAPEST).rule
    after_switch = timeparse.next_occurrence(rule, start, start, BUDAPEST)
    assert after_switch == utc(2025, 3, 30, 7, 0)  # 09:00 CEST
    autumn = utc(2025, 10, 25, 7, 0)  # Saturday 09:00 CEST; CET from the 26th
    assert timeparse.next_occurrence(rule, start, autumn, BUDAPEST) == utc(2025, 10, 26, 8, 0)


def test_weekday_repeats_skip_the_weekend() -> None:
    rule = timeparse.parse_repeat("every weekday at 9", BUDAPEST).rule
    first = timeparse.first_occurrence(rule, NOW, BUDAPEST)  # Saturday: first is Monday
    assert first == utc(2025, 3, 31, 7, 0)
    assert timeparse.next_occurrence(rule, first, first, BUDAPEST) == utc(2025, 4, 1, 7, 0)


def test_count_and_until_end_a_series() -> None:
    start = utc(2025, 3, 29, 8, 0)
    assert timeparse.next_occurrence("FREQ=DAILY;COUNT=2", start, start, BUDAPEST) == utc(2025, 3, 30, 7, 0)
    assert timeparse.next_occurrence("FREQ=DAILY;COUNT=2", start, utc(2025, 3, 30, 7, 0), BUDAPEST) is None
    until = timeparse.parse_repeat("FREQ=DAILY;UNTIL=20250330", BUDAPEST).rule
    assert timeparse.next_occurrence(until, start, utc(2025, 3, 30, 7, 0), BUDAPEST) is None


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;UNTIL=20200101T000000Z",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30",  # dateutil alone would search to year 9999
    ],
)
def test_rules_that_never_fire_are_found_out(rule: str) -> None:
    assert timeparse.first_occurrence(rule, NOW, BUDAPEST) is None


def test_repeats_are_described_in_words() -> None:
    assert timeparse.describe_repeat("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=30;BYSECOND=0") == (
        "every weekday at 09:30"
    )
    assert timeparse.describe_repeat("FREQ=DAILY;COUNT=3") == "FREQ=DAILY;COUNT=3"
