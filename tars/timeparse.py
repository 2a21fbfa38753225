"""Times and repeats in the owner's words: "tomorrow 2pm", "in 20 minutes", "every weekday at 9".

Everything here works in the owner's timezone and hands back timezone-aware UTC instants.
Wall-clock times are placed on the calendar first and converted to UTC last, with the
offset of the *target* day, so "tomorrow 2pm" is right across a daylight-saving change.

Common phrasings are read by a small grammar in this module (fast: no import cost);
anything else falls back to ``dateparser`` (imported only then). A day without a time
means 09:00; "next friday" is the first Friday after today, "friday" may be today if
the time is still ahead.

Repeats are RFC 5545 RRULE strings ("FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0"),
written by hand or made from words ("daily", "every monday at 9", "every weekday"), and
expanded with python-dateutil in the owner's timezone, so a 09:00 reminder stays at 09:00
when the clocks change.

``TARS_NOW`` (an ISO 8601 time) stands in for the clock: tests and demos set it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tars.errors import UserError

if TYPE_CHECKING:
    from dateutil.rrule import rrule

UTC = dt.UTC
DEFAULT_HOUR = 9
#: How far ahead a repeat is searched for its next occurrence before it counts as finished.
HORIZON = dt.timedelta(days=366 * 10)


class TimeParseError(UserError):
    """A time, duration or repeat TARS could not understand (the hint shows what works)."""


def _shown(text: str, limit: int = 60) -> str:
    """``text`` as echoed in a message: cut short, so a huge input is not printed whole."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- the clock


def clock_now() -> dt.datetime:
    """Now, in UTC: ``$TARS_NOW`` if set (tests, demos), else the system clock."""
    fixed = os.environ.get("TARS_NOW")
    if not fixed:
        return dt.datetime.now(UTC)
    try:
        value = dt.datetime.fromisoformat(fixed.strip())
    except ValueError:
        raise TimeParseError(
            f"TARS_NOW={fixed!r} is not an ISO 8601 time", "e.g. TARS_NOW=2025-03-29T10:00:00+01:00"
        ) from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeParseError(f"{name!r} is not a known timezone", "use an IANA name such as Europe/London") from None


def localize(wall: dt.datetime, timezone: str) -> dt.datetime:
    """A naive wall-clock time in ``timezone`` → the UTC instant (gaps move forward)."""
    return wall.replace(tzinfo=zone(timezone)).astimezone(UTC)


def local(instant: dt.datetime, timezone: str) -> dt.datetime:
    return instant.astimezone(zone(timezone))


def show(instant: dt.datetime | None, timezone: str) -> str:
    """An instant as people read it, in the owner's timezone: ``Sun 30 Mar 2025 14:00``."""
    if instant is None:
        return ""
    return local(instant, timezone).strftime("%a %d %b %Y %H:%M")


# --------------------------------------------------------------------------- durations

_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
}  # fmt: skip
_UNITS = {
    "s": "seconds", "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds",
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "wks": "weeks", "week": "weeks", "weeks": "weeks",
}  # fmt: skip
_NUM = r"(?:\d+(?:\.\d+)?|" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + ")"
_UNIT = "(?:" + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True)) + ")"
_PART = re.compile(rf"({_NUM})\s*({_UNIT})(?![a-z])")
_DURATION = re.compile(rf"^(?:{_NUM}\s*{_UNIT}(?![a-z])(?:\s*(?:,|and)?\s*)?)+$")


def parse_duration(text: str) -> dt.timedelta | None:
    """ "10 minutes", "1h", "1h30m", "an hour and a half", "half an hour" → timedelta, or None."""
    parts = _duration_parts(text)
    return None if parts is None else dt.timedelta(days=parts[0]) + parts[1]


def _duration_parts(text: str) -> tuple[int, dt.timedelta] | None:
    """(whole calendar days, exact time): "in 3 days" keeps the time of day across DST."""
    words = _clean(text).removeprefix("in ").strip()
    if words in ("half an hour", "half hour", "a half hour"):
        return 0, dt.timedelta(minutes=30)
    half = words.endswith(" and a half")
    words = words.removesuffix(" and a half")
    if not words or not _DURATION.match(words):
        return None
    days, exact = 0, dt.timedelta()
    unit = "minutes"
    for number, word in _PART.findall(words):
        amount = float(_NUMBER_WORDS[number]) if number in _NUMBER_WORDS else float(number)
        unit = _UNITS[word]
        try:
            if unit in ("days", "weeks") and amount.is_integer():
                days += int(amount) * (7 if unit == "weeks" else 1)
            else:
                exact += dt.timedelta(**{unit: amount})
        except OverflowError:
            days = HORIZON.days + 1
    if half:
        exact += dt.timedelta(**{unit: 0.5})
    if days > HORIZON.days or exact > HORIZON or dt.timedelta(days=days) + exact > HORIZON:
        raise TimeParseError(
            f"{_shown(text)!r} is more than {HORIZON.days // 366} years away",
            "give a time within the next ten years, e.g. 'in 2 weeks' or 'next friday 9am'",
        )
    if days == 0 and exact <= dt.timedelta():
        return None
    return days, exact


# --------------------------------------------------------------------------- points in time

_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}  # fmt: skip
_PARTS_OF_DAY = {"morning": (9, 0), "afternoon": (14, 0), "evening": (18, 0), "night": (20, 0)}
_WEEKDAY = "(?:" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + ")"
_DAY = rf"(?P<day>today|tonight|tomorrow|yesterday|(?:(?P<rel>next|this|on)\s+)?(?P<wd>{_WEEKDAY}))"
_CLOCK = (
    r"(?P<time>noon|midday|midnight|(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?\s*(?P<ampm>am|pm|a\.m\.|p\.m\.)?"
    r"|(?P<pod>morning|afternoon|evening|night))"
)
_FORMS = [
    re.compile(rf"^{_DAY}(?:\s+(?:at|@|in the)?\s*{_CLOCK})?$"),
    re.compile(rf"^(?:at\s+)?{_CLOCK}(?:\s+(?:on\s+)?{_DAY})?$"),
]
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}")


@dataclass(frozen=True)
class _Clock:
    hour: int
    minute: int
    evening: bool = False  # "tonight at 9" means 21:00


def parse_time(text: str, timezone: str, now: dt.datetime) -> dt.datetime:
    """A point in time from words, in the owner's ``timezone``, relative to ``now``; UTC-aware.

    May return a time in the past ("yesterday 3pm"); use ``parse_future`` for new things.
    """
    words = _clean(text)
    if not words:
        raise TimeParseError("no time given", _TIME_HINT)
    now = now.astimezone(UTC)
    if _ISO_DATE.match(words) or _ISO.match(words):
        return _iso(words, timezone)
    duration = _duration_parts(words)
    if duration is not None:
        days, exact = duration
        if days:
            wall = local(now, timezone).replace(tzinfo=None) + dt.timedelta(days=days)
            now = localize(wall, timezone)
        return now + exact
    simple = _simple(words, local(now, timezone))
    if simple is not None:
        return localize(simple, timezone)
    found = _with_dateparser(words, local(now, timezone))
    if found is None:
        raise TimeParseError(f"could not understand the time {_shown(text)!r}", _TIME_HINT)
    return localize(found, timezone)


def parse_future(text: str, timezone: str, now: dt.datetime) -> dt.datetime:
    """Like ``parse_time``, but the time must be after ``now`` (for new reminders, snoozes)."""
    when = parse_time(text, timezone, now)
    if when <= now:
        raise TimeParseError(
            f"{_shown(text)!r} is in the past ({show(when, timezone)}, {timezone})",
            "give a time in the future, e.g. 'tomorrow 9am' or 'in 20 minutes'",
        )
    return when


_TIME_HINT = (
    "times are read in English: try 'tomorrow 2pm', 'in 20 minutes', 'next Friday at 9', 'tonight at 8:30' "
    "or an ISO time such as 2025-04-01T09:00"
)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(".").strip()


def _iso(words: str, timezone: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(words.upper())
    except ValueError:
        raise TimeParseError(f"{words!r} is not a valid ISO 8601 time", _TIME_HINT) from None
    if _ISO_DATE.match(words):
        value = value.replace(hour=DEFAULT_HOUR)
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    return localize(value, timezone)


def _simple(words: str, now_local: dt.datetime) -> dt.datetime | None:
    """The small grammar: [day] [at] [clock] in either order. Naive local wall time or None."""
    for form in _FORMS:
        match = form.match(words)
        if match:
            break
    else:
        return None
    parts = match.groupdict()
    clock = _clock(parts, evening=parts.get("day") == "tonight")
    if clock is None and parts.get("time"):
        raise TimeParseError(f"{parts['time']!r} is not a time of day", _TIME_HINT)
    today = now_local.date()
    wall_now = now_local.replace(tzinfo=None)
    day = parts.get("day")
    if day is None:  # a clock alone: the next time it shows that
        assert clock is not None
        candidate = dt.datetime.combine(today, dt.time(clock.hour, clock.minute))
        return candidate if candidate > wall_now else candidate + dt.timedelta(days=1)
    if clock is None:
        clock = _Clock(20, 0) if day == "tonight" else _Clock(DEFAULT_HOUR, 0)
    at = dt.time(clock.hour, clock.minute)
    if day in ("today", "tonight"):
        return dt.datetime.combine(today, at)
    if day == "tomorrow":
        return dt.datetime.combine(today + dt.timedelta(days=1), at)
    if day == "yesterday":
        return dt.datetime.combine(today - dt.timedelta(days=1), at)
    ahead = (_WEEKDAYS[parts["wd"]] - today.weekday()) % 7
    if parts.get("rel") == "next" and ahead == 0:
        ahead = 7
    candidate = dt.datetime.combine(today + dt.timedelta(days=ahead), at)
    if candidate <= wall_now:
        candidate += dt.timedelta(days=7)
    return candidate


def _clock(parts: dict[str, str | None], evening: bool) -> _Clock | None:
    if not parts.get("time"):
        return None
    word = parts["time"]
    if word in ("noon", "midday"):
        return _Clock(12, 0)
    if word == "midnight":
        return _Clock(0, 0)
    if parts.get("pod"):
        hour, minute = _PARTS_OF_DAY[parts["pod"] or "morning"]
        return _Clock(hour, minute)
    hour, minute = int(parts["h"] or 0), int(parts["m"] or 0)
    ampm = (parts.get("ampm") or "").replace(".", "")
    if minute > 59:
        return None
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    elif evening and 1 <= hour < 12:
        hour += 12
    if hour > 23:
        return None
    return _Clock(hour, minute)


def _with_dateparser(words: str, now_local: dt.datetime) -> dt.datetime | None:
    """Anything the grammar does not know, as a naive local wall time (dateparser's offsets
    are those of *now*, wrong across a DST change, so it is asked for wall time only)."""
    import dateparser

    found = dateparser.parse(
        words,
        languages=["en"],
        settings={
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": now_local.replace(tzinfo=None),
            "RETURN_AS_TIMEZONE_AWARE": False,
            "PREFER_DAY_OF_MONTH": "first",
        },
    )
    return found.replace(tzinfo=None, microsecond=0) if found else None


# --------------------------------------------------------------------------- repeats

_FREQ_WORDS = {
    "minute": "MINUTELY", "hour": "HOURLY", "day": "DAILY", "week": "WEEKLY",
    "month": "MONTHLY", "year": "YEARLY",
}  # fmt: skip
_ADVERBS = {
    "hourly": "FREQ=HOURLY", "daily": "FREQ=DAILY", "weekly": "FREQ=WEEKLY",
    "monthly": "FREQ=MONTHLY", "yearly": "FREQ=YEARLY", "annually": "FREQ=YEARLY",
    "weekday": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "weekdays": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    "weekend": "FREQ=WEEKLY;BYDAY=SA,SU", "weekends": "FREQ=WEEKLY;BYDAY=SA,SU",
}  # fmt: skip
_RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_RULE_HINT = (
    "repeats are read in English: try 'daily', 'weekly', 'every weekday', 'every monday at 9', 'every 2 hours' "
    "or an RRULE such as FREQ=WEEKLY;BYDAY=MO,TH"
)


@dataclass(frozen=True)
class Repeat:
    """A repeat rule as an RRULE string; ``has_time`` when it fixes the time of day itself."""

    rule: str

    @property
    def has_time(self) -> bool:
        return "BYHOUR=" in self.rule


def parse_repeat(text: str, timezone: str = "UTC") -> Repeat:
    """ "every monday at 9", "daily", "weekly", "every weekday", "every 2 hours" or an RRULE.

    An RRULE's UNTIL without a trailing Z is read in ``timezone`` and stored in UTC.
    """
    raw = text.strip()
    upper = raw.upper()
    if upper.startswith(("FREQ=", "RRULE:")):
        return Repeat(_checked_rrule(upper.removeprefix("RRULE:"), timezone))
    words = _clean(raw)
    words = re.sub(r"^(every|each|repeat|repeating)\s+", "", words)
    time_part: _Clock | None = None
    at = re.search(r"\s*\bat\s+(.+)$", words)
    if at:
        match = re.match(rf"^{_CLOCK}$", at.group(1))
        clock = _clock(match.groupdict(), evening=False) if match else None
        if clock is None:
            raise TimeParseError(f"could not understand the time {at.group(1)!r} in {text!r}", _RULE_HINT)
        time_part = clock
        words = words[: at.start()].strip()
    rule = _rule_from_words(words)
    if rule is None:
        raise TimeParseError(f"could not understand the repeat {text!r}", _RULE_HINT)
    if time_part is not None:
        if rule.startswith(("FREQ=HOURLY", "FREQ=MINUTELY")):
            raise TimeParseError(f"{text!r}: an hourly repeat has no time of day", _RULE_HINT)
        rule += f";BYHOUR={time_part.hour};BYMINUTE={time_part.minute};BYSECOND=0"
    return Repeat(_checked_rrule(rule, timezone))


def _rule_from_words(words: str) -> str | None:
    if words in _ADVERBS:
        return _ADVERBS[words]
    interval = 1
    match = re.match(rf"^({_NUM}|other)\s+(.+)$", words)
    if match:
        number = match.group(1)
        interval = 2 if number == "other" else int(float(_NUMBER_WORDS.get(number, number)))
        words = match.group(2)
    if interval < 1:
        return None
    every = f";INTERVAL={interval}" if interval > 1 else ""
    unit = words.removesuffix("s")
    if unit in _FREQ_WORDS:
        return f"FREQ={_FREQ_WORDS[unit]}{every}"
    days = [d for d in re.split(r"\s*(?:,|\band\b|&|\+|/)\s*|\s+", words) if d]
    names = [d.removesuffix("s") if d.removesuffix("s") in _WEEKDAYS else d for d in days]
    if names and all(n in _WEEKDAYS for n in names):
        byday = ",".join(_RRULE_DAYS[i] for i in sorted({_WEEKDAYS[n] for n in names}))
        return f"FREQ=WEEKLY;BYDAY={byday}{every}"
    return None


def _fields(rule: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in rule.split(";") if "=" in p)


def _checked_rrule(rule: str, timezone: str) -> str:
    from dateutil.rrule import rrulestr

    rule = re.sub(r"\s+", "", rule).strip(";")
    if "DTSTART" in rule or "RRULE:" in rule:
        raise TimeParseError(
            "give the repeat as a single RRULE line without DTSTART",
            "the first time comes from --at",
        )
    refuse_degenerate(rule)
    until = _fields(rule).get("UNTIL")
    if until and not until.endswith("Z"):
        rule = rule.replace(f"UNTIL={until}", f"UNTIL={_until_in_utc(until, timezone)}")
    try:
        rrulestr(rule, dtstart=dt.datetime(2000, 1, 1, tzinfo=UTC))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise TimeParseError(f"{rule!r} is not a valid RRULE: {exc}", _RULE_HINT) from None
    return rule


class TooFrequent(TimeParseError):
    """A repeat that would fire more often than once a minute."""

    #: The same, as a sentence the assistant can say on the phone.
    spoken = (
        "A reminder can repeat at most once a minute, so every second cannot be set. "
        "Every minute, or any longer interval, works."
    )


#: No repeat fires more often than once a minute: a call or a text every few seconds is a
#: mistake (or an attack on the owner's phone bill), never a reminder.
MIN_INTERVAL = dt.timedelta(minutes=1)
_MAX_INTERVAL = 100_000


def refuse_degenerate(rule: str) -> None:
    """Raise ``TimeParseError`` for a rule that could spin the scheduler or fire more often
    than ``MIN_INTERVAL``: INTERVAL=0 (dateutil never returns from it), SECONDLY, several
    seconds in one minute, a non-numeric or absurd INTERVAL or COUNT."""
    fields = _fields(rule.upper())
    freq = fields.get("FREQ", "")
    seconds = [p for p in fields.get("BYSECOND", "").split(",") if p]
    if freq == "SECONDLY" or len(seconds) > 1:  # first: of all that is wrong, the one to tell
        raise TooFrequent(
            "a repeat may not fire more than once a minute",
            "the most frequent repeat is FREQ=MINUTELY (every minute); calls and texts every few seconds are refused",
        )
    interval = fields.get("INTERVAL", "1")
    if not interval.isascii() or not interval.isdigit() or not 1 <= int(interval) <= _MAX_INTERVAL:
        raise TimeParseError(
            f"INTERVAL={interval[:20]} is not a whole number from 1 to {_MAX_INTERVAL}",
            "e.g. FREQ=HOURLY;INTERVAL=2 for every two hours",
        )
    count = fields.get("COUNT")
    if count is not None and (not count.isascii() or not count.isdigit() or len(count) > 6):
        raise TimeParseError(f"COUNT={count[:20]} is not a whole number up to 999999", "e.g. COUNT=10")


def _until_in_utc(until: str, timezone: str) -> str:
    for pattern in ("%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            wall = dt.datetime.strptime(until, pattern)
        except ValueError:
            continue
        if pattern == "%Y%m%d":
            wall = wall.replace(hour=23, minute=59, second=59)  # the whole last day counts
        return localize(wall, timezone).strftime("%Y%m%dT%H%M%SZ")
    raise TimeParseError(f"UNTIL={until} is not an RFC 5545 date or date-time", "e.g. UNTIL=20251231T235959Z")


def _rrule(rule: str, series_start: dt.datetime, timezone: str) -> rrule:
    from dateutil.rrule import rrulestr

    start = local(series_start, timezone).replace(microsecond=0)
    return rrulestr(rule, dtstart=start)  # type: ignore[return-value]


def first_occurrence(rule: str, start: dt.datetime, timezone: str) -> dt.datetime | None:
    """The first time ``rule`` fires at or after ``start`` (UTC), or None if it never does
    (COUNT=0, an UNTIL in the past, 30 February, nothing within ten years)."""
    refuse_degenerate(rule)
    if _fields(rule).get("COUNT") == "0" or not _some_day_matches(rule, start, timezone):
        return None
    since = local(start, timezone).replace(microsecond=0)
    found = _bounded(_rrule(rule, start, timezone), since).after(since, inc=True)
    return found.astimezone(UTC) if found else None


def next_occurrence(rule: str, series_start: dt.datetime, after: dt.datetime, timezone: str) -> dt.datetime | None:
    """The first time the series fires strictly after ``after``, keeping wall-clock time in
    ``timezone`` (09:00 stays 09:00 across DST); None when the series is over.

    Bounded: a degenerate rule (one stored before such rules were refused) raises
    ``TimeParseError`` instead of searching forever, and COUNT series are cut off at
    ``HORIZON`` like the rest."""
    refuse_degenerate(rule)
    try:
        series = _rrule(rule, series_start, timezone)
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # dateutil's word for a bad rule
        raise TimeParseError(f"{rule[:200]!r} is not a valid RRULE: {exc}", _RULE_HINT) from None
    since = local(after, timezone)
    if "COUNT" not in _fields(rule):
        series = _bounded(series, since)
    elif (since - local(series_start, timezone)) > HORIZON * 10:
        return None
    found = series.after(since, inc=False)
    return found.astimezone(UTC) if found else None


_DAY_FILTERS = ("BYMONTH", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYDAY", "BYEASTER")


def _some_day_matches(rule: str, start: dt.datetime, timezone: str) -> bool:
    """Whether any day at all passes the rule's day filters. dateutil walks a rule whose
    filters match nothing (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) day by day to year 9999,
    for seconds; the same filters at month or year steps answer in well under a second."""
    from dateutil.rrule import rrulestr

    fields = _fields(rule)
    filters = {k: v for k, v in fields.items() if k in _DAY_FILTERS}
    if not filters:
        return True
    freq = "MONTHLY" if fields.get("FREQ") == "MONTHLY" else "YEARLY"
    if freq == "YEARLY" and fields.get("FREQ") != "YEARLY" and "BYDAY" in filters:
        filters["BYDAY"] = ",".join(re.sub(r"^[+-]?\d+", "", d) for d in filters["BYDAY"].split(","))
    projection = ";".join([f"FREQ={freq}", *(f"{k}={v}" for k, v in filters.items())])
    day = local(start, timezone).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    return rrulestr(projection, dtstart=day).after(day, inc=True) is not None  # type: ignore[union-attr]


def _bounded(series: rrule, since: dt.datetime) -> rrule:
    """The same series cut off ``HORIZON`` after ``since`` and without COUNT: a rule that can
    never match (30 February) is then found out in milliseconds, not by searching to 9999."""
    horizon = (since + HORIZON).astimezone(UTC)
    until = series._until
    if until is not None and until <= horizon:
        return series.replace(count=None)
    return series.replace(count=None, until=horizon)


_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _yearly_day(parts: dict[str, str]) -> str | None:
    """ "14 April" for FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=14 (a birthday reminder), else None."""
    month, day = parts.get("BYMONTH", ""), parts.get("BYMONTHDAY", "")
    if parts.get("FREQ") != "YEARLY" or not (month.isdigit() and day.isdigit()) or not 1 <= int(month) <= 12:
        return None
    return f"{int(day)} {_MONTH_NAMES[int(month) - 1]}"


def describe_repeat(rule: str | None) -> str:
    """A short human reading of the common rules; the RRULE itself otherwise."""
    if not rule:
        return ""
    parts = _fields(rule)
    freq = parts.get("FREQ", "")
    interval = int(parts.get("INTERVAL", "1"))
    names = {"MINUTELY": "minute", "HOURLY": "hour", "DAILY": "day", "WEEKLY": "week",
             "MONTHLY": "month", "YEARLY": "year"}  # fmt: skip
    known = {"FREQ", "INTERVAL", "BYDAY", "BYHOUR", "BYMINUTE", "BYSECOND"}
    yearly_on = _yearly_day(parts)
    if yearly_on and interval == 1 and not set(parts) - known - {"BYMONTH", "BYMONTHDAY"}:
        known = known | {"BYMONTH", "BYMONTHDAY"}
        freq, names = "YEARLY", {**names, "YEARLY": f"year on {yearly_on}"}
    if freq not in names or set(parts) - known or "," in parts.get("BYHOUR", "") + parts.get("BYMINUTE", ""):
        return rule
    unit = names[freq]
    text = f"every {interval} {unit}s" if interval > 1 else f"every {unit}"
    byday = parts.get("BYDAY")
    if byday:
        days = byday.split(",")
        if days == ["MO", "TU", "WE", "TH", "FR"]:
            text = "every weekday"
        elif days == ["SA", "SU"]:
            text = "every weekend day"
        else:
            full = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
            if not all(d in _RRULE_DAYS for d in days):
                return rule
            text = "every " + ", ".join(full[_RRULE_DAYS.index(d)] for d in days)
            if interval > 1:
                text += f" (every {interval} weeks)"
    if "BYHOUR" in parts:
        text += f" at {int(parts['BYHOUR']):02d}:{int(parts.get('BYMINUTE', '0')):02d}"
    return text
