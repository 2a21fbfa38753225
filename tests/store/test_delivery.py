"""Delivering reminders exactly once: claims, leases, retries, repeats, and two deliverers at once."""

from __future__ import annotations

import datetime as dt
import threading

from store_helpers import Store

from tars.store.database import connect
from tars.store.models import Reminder
from tars.store.reminders import add_reminder, cancel, claim_due, complete, fail, get_reminder, snooze

UTC = dt.UTC
T0 = dt.datetime(2025, 3, 29, 9, 0, tzinfo=UTC)  # Saturday 10:00 in Budapest
BUDAPEST = "Europe/Budapest"


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def make(store: Store, *dues: dt.datetime, recurrence: str | None = None, now: dt.datetime = T0) -> list[int]:
    with store.session() as session:
        ids = []
        for due in dues:
            reminder = add_reminder(
                session, text=f"at {due:%H:%M}", due=due, timezone=BUDAPEST, now=now, recurrence=recurrence
            )
            ids.append(reminder.id)
        return ids


def test_claim_takes_what_is_due_soonest_first(store: Store) -> None:
    late, early, future, cancelled = make(store, T0 + minutes(5), T0 + minutes(1), T0 + minutes(60), T0 + minutes(2))
    with store.session() as session:
        cancel(session, cancelled, T0)
    with store.session() as session:
        claimed = claim_due(session, T0 + minutes(10), "one", lease_seconds=60, limit=10)
    assert [r.id for r in claimed] == [early, late]
    assert all(r.status == "delivering" and r.lease_owner == "one" and r.attempts == 1 for r in claimed)
    assert claimed[0].lease_expires_at == T0 + minutes(11)
    with store.session() as session:
        assert claim_due(session, T0 + minutes(10), "two", lease_seconds=60) == []  # held
        assert get_reminder(session, future).status == "pending"


def test_limit_is_respected(store: Store) -> None:
    make(store, *(T0 + minutes(i + 1) for i in range(5)))
    with store.session() as session:
        assert len(claim_due(session, T0 + minutes(10), "one", lease_seconds=60, limit=3)) == 3
        assert len(claim_due(session, T0 + minutes(10), "one", lease_seconds=60, limit=3)) == 2


def test_a_crashed_deliverer_loses_its_lease_not_the_reminder(store: Store) -> None:
    (reminder_id,) = make(store, T0 + minutes(1))
    with store.session() as session:
        assert len(claim_due(session, T0 + minutes(2), "crashed", lease_seconds=60)) == 1
        assert claim_due(session, T0 + minutes(2.5), "rescuer", lease_seconds=60) == []
        again = claim_due(session, T0 + minutes(3), "rescuer", lease_seconds=60)  # lease ran out
        assert [r.id for r in again] == [reminder_id] and again[0].attempts == 2
        # The first deliverer wakes up: its lease is gone, so it changes nothing.
        assert complete(session, reminder_id, "crashed", T0 + minutes(3)) is None
        assert fail(session, reminder_id, "crashed", "late", T0 + minutes(3)) is None
        done = complete(session, reminder_id, "rescuer", T0 + minutes(4))
        assert done is not None and done.status == "delivered" and done.delivered_at == T0 + minutes(4)
        assert done.lease_owner is None and done.lease_expires_at is None


def test_failures_are_retried_with_backoff_then_given_up(store: Store) -> None:
    (reminder_id,) = make(store, T0 + minutes(1))
    now = T0 + minutes(1)
    with store.session() as session:
        assert claim_due(session, now, "d", lease_seconds=30)
        first = fail(session, reminder_id, "d", "busy line", now, max_attempts=3, backoff_seconds=60)
        assert first is not None and first.status == "pending" and first.retry_at == now + minutes(1)
        assert first.due == T0 + minutes(1)  # the time the owner asked for is kept
        assert claim_due(session, now + minutes(0.5), "d", lease_seconds=30) == []  # not yet
        assert claim_due(session, now + minutes(1), "d", lease_seconds=30)
        second = fail(session, reminder_id, "d", "no answer", now + minutes(1), max_attempts=3, backoff_seconds=60)
        assert second is not None and second.retry_at == now + minutes(3)  # doubled
        assert claim_due(session, now + minutes(3), "d", lease_seconds=30)
        third = fail(session, reminder_id, "d", "still nothing", now + minutes(3), max_attempts=3)
        assert third is not None and third.status == "failed" and third.attempts == 3
        assert third.last_error == "still nothing"
        assert claim_due(session, now + minutes(60), "d", lease_seconds=30) == []


def test_a_repeating_reminder_moves_on_keeping_its_wall_clock_time(store: Store) -> None:
    # Every day at 09:00 Budapest, first on Saturday (CET); Sunday is CEST.
    first = dt.datetime(2025, 3, 29, 8, 0, tzinfo=UTC)
    (reminder_id,) = make(store, first, recurrence="FREQ=DAILY", now=first - minutes(60))
    with store.session() as session:
        for day, expected_next in [(29, (30, 7)), (30, (31, 7))]:
            now = dt.datetime(2025, 3, day, 12, 0, tzinfo=UTC)
            assert [r.id for r in claim_due(session, now, "d", lease_seconds=60)] == [reminder_id]
            moved = complete(session, reminder_id, "d", now)
            assert moved is not None and moved.status == "pending" and moved.attempts == 0
            assert moved.due == dt.datetime(2025, 3, expected_next[0], expected_next[1], 0, tzinfo=UTC)
            assert moved.delivered_at == now


def test_a_repeat_that_runs_out_is_delivered_for_good(store: Store) -> None:
    (reminder_id,) = make(store, T0 + minutes(1), recurrence="FREQ=DAILY;COUNT=1")
    with store.session() as session:
        assert claim_due(session, T0 + minutes(2), "d", lease_seconds=60)
        done = complete(session, reminder_id, "d", T0 + minutes(2))
        assert done is not None and done.status == "delivered"


def test_snoozing_during_delivery_wins_over_the_deliverer(store: Store) -> None:
    (reminder_id,) = make(store, T0 + minutes(1))
    with store.session() as session:
        assert claim_due(session, T0 + minutes(1), "d", lease_seconds=60)
        snooze(session, reminder_id, T0 + minutes(11), T0 + minutes(1))  # "remind me in 10 minutes"
    with store.session() as session:
        assert complete(session, reminder_id, "d", T0 + minutes(2)) is None
        reminder = get_reminder(session, reminder_id)
        assert reminder.status == "pending" and reminder.due == T0 + minutes(11)


def test_two_deliverers_never_claim_the_same_reminder(store: Store) -> None:
    with store.session() as session:
        session.add_all(Reminder(text=f"r{i}", due=T0 - dt.timedelta(seconds=i), timezone=BUDAPEST) for i in range(200))
    claims: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def deliverer(name: str) -> None:
        try:
            with connect(store.url) as db:
                barrier.wait()
                while True:
                    with db.session() as session:
                        got = claim_due(session, T0, name, lease_seconds=300, limit=7)
                    if not got:
                        return
                    claims[name].extend(r.id for r in got if r.id is not None)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliverer, args=(name,)) for name in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    both = claims["a"] + claims["b"]
    assert len(both) == len(set(both)) == 200  # every one claimed, none twice
    owners = dict(store.sql("SELECT id, lease_owner FROM reminder"))
    assert all(owners[i] == "a" for i in claims["a"]) and all(owners[i] == "b" for i in claims["b"])


def test_a_repeating_reminder_that_keeps_failing_moves_on_to_its_next_time(store: Store) -> None:
    first = dt.datetime(2025, 3, 29, 8, 0, tzinfo=UTC)
    (reminder_id,) = make(store, first, recurrence="FREQ=DAILY", now=first - minutes(60))
    with store.session() as session:
        assert claim_due(session, first, "d", lease_seconds=60)
        gave_up = fail(session, reminder_id, "d", "no answer", first, max_attempts=1)
        assert gave_up is not None and gave_up.status == "pending" and gave_up.attempts == 0
        assert gave_up.due == dt.datetime(2025, 3, 30, 7, 0, tzinfo=UTC) and gave_up.last_error == "no answer"
