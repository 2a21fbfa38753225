"""Bad input to the store and the CLI ends in a sentence, never a crash or a spinning
scheduler: degenerate repeats, ids and durations too large for any row or clock, and
wrong PINs counted across calls."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from store_helpers import NOW, TIMEZONE, Store, seed_reminder
from typer.testing import Result

from tars.errors import UserError

Tars = Callable[..., Result]
HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("FREQ=MINUTELY;INTERVAL=0", "Error: INTERVAL=0 is not a whole number from 1 to 100000"),
        ("FREQ=SECONDLY", "Error: a repeat may not fire more than once a minute"),
        ("FREQ=MINUTELY;BYSECOND=0,30", "Error: a repeat may not fire more than once a minute"),
        ("FREQ=DAILY;INTERVAL=1e9", "Error: INTERVAL=1E9 is not a whole number from 1 to 100000"),
    ],
)
def test_degenerate_repeats_are_refused_when_added(store: Store, tars: Tars, rule: str, message: str) -> None:
    result = tars("remind", "add", "spam", "--at", "in 5 minutes", "--every", rule)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(message), result.output
    # The create_reminder tool stores reminders through the same function.
    from tars.store.reminders import create_reminder

    with store.session() as session, pytest.raises(UserError):
        create_reminder(
            session, text="spam", when="in 5 minutes", every=rule, timezone=TIMEZONE, now=dt.datetime.fromisoformat(NOW)
        )
    assert tars("remind", "add", "stretch", "--at", "in 5 minutes", "--every", "FREQ=MINUTELY").exit_code == 0


def test_a_stored_degenerate_repeat_ends_instead_of_spinning(store: Store) -> None:
    """A rule written before such rules were refused: done moves on without hanging the scheduler."""
    from tars.store.reminders import get_reminder, mark_done

    reminder_id = seed_reminder(store, "spin", 1)
    store.sql("UPDATE reminder SET recurrence = 'FREQ=MINUTELY;INTERVAL=0' WHERE id = :id", id=reminder_id)
    now = dt.datetime.fromisoformat(NOW)
    with store.session() as session:
        mark_done(session, reminder_id, now)
        assert get_reminder(session, reminder_id).status != "pending"


def test_ids_and_durations_too_large_get_a_sentence(store: Store, tars: Tars) -> None:
    for args in (("calls", "show", HUGE), ("remind", "done", HUGE), ("remind", "rm", HUGE)):
        result = tars(*args)
        assert result.exit_code == 1, (args, result.output)
        assert HUGE in result.output.splitlines()[0]
    snooze = tars("remind", "snooze", HUGE, "10 minutes")
    assert (snooze.exit_code, snooze.output.splitlines()[0]) == (1, f"Error: no reminder with id {HUGE}")
    for at in ("in 99999999999999999999 minutes", "in 99999999999999 days", "in 5000 weeks"):
        result = tars("remind", "add", "x", "--at", at)
        assert result.exit_code == 1, result.output
        assert "is more than 10 years away" in result.output
    long = tars("remind", "add", "x", "--at", "y" * 100_000)
    assert long.exit_code == 1 and len(long.output) < 600


def test_wrong_pins_lock_a_number_then_everyone_with_backoff(store: Store) -> None:
    from tars.store import pin_attempts

    now = dt.datetime.fromisoformat(NOW)
    with store.session() as s:
        results = [pin_attempts.record_failure(s, "+15005550006", now) for _ in range(pin_attempts.PER_NUMBER)]
        assert results[:-1] == [None] * (pin_attempts.PER_NUMBER - 1)
        first = results[-1]
        assert first is not None and first.until == now + pin_attempts.BACKOFF
        assert pin_attempts.locked(s, "+15005550006", now) == first
        assert pin_attempts.locked(s, "+15005550007", now) is None
        later = first.until + dt.timedelta(seconds=1)
        assert pin_attempts.locked(s, "+15005550006", later) is None
        second = [pin_attempts.record_failure(s, "+15005550006", later) for _ in range(pin_attempts.PER_NUMBER)][-1]
        assert second is not None and second.until == later + 2 * pin_attempts.BACKOFF
        # A caller with a fresh number for every guess trips the overall limit.
        everyone = None
        for n in range(pin_attempts.OVERALL):
            everyone = pin_attempts.record_failure(s, f"+1500555{n:04d}", later) or everyone
        assert everyone is not None and everyone.scope == pin_attempts.EVERYONE
        assert pin_attempts.locked(s, "+447700900123", later) is not None


def test_wrong_web_tokens_lock_an_address_then_everyone_apart_from_the_pin_counts(store: Store) -> None:
    from tars.store import pin_attempts, sign_in_attempts

    now = dt.datetime.fromisoformat(NOW)
    with store.session() as s:
        tries = [sign_in_attempts.record_failure(s, "203.0.113.7", now) for _ in range(sign_in_attempts.PER_ADDRESS)]
        assert tries[:-1] == [None] * (sign_in_attempts.PER_ADDRESS - 1)
        assert tries[-1] == now + pin_attempts.BACKOFF
        assert sign_in_attempts.locked(s, "203.0.113.7", now) == tries[-1]
        assert sign_in_attempts.locked(s, "198.51.100.2", now) is None
        assert pin_attempts.locked(s, "+447700900123", now) is None  # the PIN counts are their own
        later = tries[-1] + dt.timedelta(seconds=1)
        assert sign_in_attempts.locked(s, "203.0.113.7", later) is None
        again = [sign_in_attempts.record_failure(s, "203.0.113.7", later) for _ in range(sign_in_attempts.PER_ADDRESS)]
        assert again[-1] == later + 2 * pin_attempts.BACKOFF  # each lockout twice as long
        sign_in_attempts.record_success(s, "203.0.113.7")
        assert sign_in_attempts.locked(s, "203.0.113.7", later) is None
        everyone = None  # an attacker with a fresh address for every guess trips the overall limit
        for n in range(sign_in_attempts.OVERALL):
            everyone = sign_in_attempts.record_failure(s, f"192.0.2.{n}", later) or everyone
        assert everyone is not None and sign_in_attempts.locked(s, "198.51.100.2", later) == everyone
