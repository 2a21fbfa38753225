"""The store side of scheduling: the 0002 migration, claiming scheduled calls, retry decisions
made once, live owner calls, and "done" right after a delivery. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from tars.store.database import connect

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LONDON = "Europe/London"


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def busy_call(session: Any, **extra: Any) -> Any:
    from tars.store.calls import start_call, update_call

    call = start_call(session, direction="outbound", from_number="+447700900999", to_number="+442079460123",
                      playbook="book_appointment", inputs={"preferred_day": "Monday"}, callee="Dentist",
                      sid="CA" + "1" * 32)  # fmt: skip
    return update_call(session, call.id, status="busy", **extra)


def race(url: str, work: Callable[[Any, str], Any], names: tuple[str, ...] = ("a", "b")) -> dict[str, Any]:
    """Run ``work(session, name)`` in one thread per name, each with its own engine, all at once."""
    results: dict[str, Any] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names))

    def run(name: str) -> None:
        try:
            with connect(url) as db:
                barrier.wait()
                with db.session() as session:
                    results[name] = work(session, name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def test_upgrading_from_0001_keeps_every_row(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from tars.store import schema
    from tars.store.calls import call_details
    from tars.store.database import _engine
    from tars.store.reminders import get_reminder

    engine, _ = _engine(database_url)  # SQLite as TARS opens it: foreign keys on
    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(text("INSERT INTO call (id, direction, from_number, to_number, status, created_at, updated_at) "
                          "VALUES (1, 'inbound', '+1', '+2', 'completed', :t, :t)"), {"t": T0})  # fmt: skip
        conn.execute(text("INSERT INTO transcript_line (call_id, at, speaker, text) VALUES (1, :t, 'caller', 'hi')"),
                     {"t": T0})  # fmt: skip
        conn.execute(text("INSERT INTO reminder (id, text, due, timezone, channel, status, attempts, "
                          "created_at, updated_at) VALUES (7, 'x', :t, 'UTC', 'sms', 'pending', 0, :t, :t)"),
                     {"t": T0})  # fmt: skip
        conn.commit()
    engine.dispose()
    with connect(database_url) as db, db.session() as session:  # first use upgrades to HEAD
        details = call_details(session, 1)
        reminder = get_reminder(session, 7)
    assert [line.text for line in details.transcript] == ["hi"]
    assert (details.call.attempt, details.call.follow_up, details.call.scheduled_at) == (1, None, None)
    assert reminder.late is False and reminder.status == "pending"


def test_scheduled_calls_are_claimed_once_and_again_after_a_lost_lease(database_url: str) -> None:
    from tars.store.call_queue import claim_due_calls, release_call, schedule_call

    with connect(database_url) as db, db.session() as session:
        ids = [
            schedule_call(session, from_number="+1", to_number="+442079460123", playbook="book_appointment",
                          inputs={}, at=T0 + minutes(i)).id
            for i in (2, 1, 30)
        ]  # fmt: skip
    claims = race(database_url, lambda s, name: [c.id for c in claim_due_calls(s, T0 + minutes(5), name, 60)])
    assert sorted(claims["a"] + claims["b"]) == sorted(ids[:2])  # each due call to one claimer
    with connect(database_url) as db, db.session() as session:
        assert claim_due_calls(session, T0 + minutes(5), "c", 60) == []  # held
        again = claim_due_calls(session, T0 + minutes(7), "c", 60)  # both leases ran out
        assert [c.id for c in again] == [ids[1], ids[0]]  # soonest first
        assert release_call(session, ids[1], "c", scheduled_at=T0 + minutes(60))
        assert not release_call(session, ids[1], "someone else")
        later = [c.id for c in claim_due_calls(session, T0 + minutes(59), "d", 60)]
        assert later == [ids[0], ids[2]]  # the one put off to +60 is not due yet


def test_a_retry_is_decided_once_whoever_decides(database_url: str) -> None:
    from tars.store.call_queue import attempts_of, calls_to_follow_up, schedule_retry

    with connect(database_url) as db, db.session() as session:
        first = busy_call(session)
    with connect(database_url) as db, db.session() as session:
        [pending] = calls_to_follow_up(session)

    def decide(session: Any, name: str) -> Any:
        retry = schedule_retry(session, pending, T0 + minutes(10))
        return retry.id if retry is not None else None

    results = race(database_url, decide, ("a", "b", "c"))
    made = [r for r in results.values() if r is not None]
    assert len(made) == 1
    with connect(database_url) as db, db.session() as session:
        assert calls_to_follow_up(session) == []
        series = attempts_of(session, made[0])
    assert [c.id for c in series] == [first.id, made[0]]
    assert (series[1].attempt, series[1].retry_of, series[1].status, series[1].scheduled_at) == (
        2, first.id, "queued", T0 + minutes(10))  # fmt: skip
    assert series[1].inputs == first.inputs and series[0].follow_up == "retry"


def test_live_owner_calls_are_seen_by_other_servers_until_they_lapse(database_url: str) -> None:
    from tars.store.call_queue import mark_live, owner_live_elsewhere
    from tars.store.calls import start_call

    with connect(database_url) as db, db.session() as session:
        call = start_call(
            session, direction="inbound", from_number="+447700900123", to_number="+447700900999", role="owner"
        )
    with connect(database_url) as db, db.session() as session:
        mark_live(session, [call.id], "server-1", T0 + dt.timedelta(seconds=10))
        assert owner_live_elsewhere(session, "server-2", T0) == "server-1"
        assert owner_live_elsewhere(session, "server-1", T0) is None  # its own call
        assert owner_live_elsewhere(session, "server-2", T0 + dt.timedelta(seconds=11)) is None  # lapsed


def test_done_right_after_a_delivery_means_the_one_just_delivered(database_url: str) -> None:
    from tars.store.reminders import add_reminder, claim_due, complete, mark_done

    with connect(database_url) as db, db.session() as session:
        daily = add_reminder(session, text="pills", due=T0 + minutes(1), timezone=LONDON, now=T0,
                             recurrence="FREQ=DAILY").id  # fmt: skip
        once = add_reminder(session, text="call Helen", due=T0 + minutes(1), timezone=LONDON, now=T0).id
    with connect(database_url) as db, db.session() as session:
        assert len(claim_due(session, T0 + minutes(1), "d", 60)) == 2
        moved = complete(session, daily, "d", T0 + minutes(1))
        closed = complete(session, once, "d", T0 + minutes(1), late=True)
    assert moved is not None and moved.due == T0 + minutes(1) + dt.timedelta(days=1)
    assert closed is not None and closed.status == "delivered" and closed.late
    with connect(database_url) as db, db.session() as session:
        assert mark_done(session, daily, T0 + minutes(3)).due == moved.due  # acknowledged: not skipped
        assert mark_done(session, once, T0 + minutes(3)).status == "delivered"  # no "already done" error
        # Hours later, "done" is about the next one: it is skipped.
        assert mark_done(session, daily, T0 + minutes(120)).due == moved.due + dt.timedelta(days=1)


def test_many_deliveries_are_recorded_at_once_except_those_whose_lease_was_lost(database_url: str) -> None:
    from tars.store.reminders import add_reminder, claim_due, complete_many, get_reminder, snooze

    with connect(database_url) as db, db.session() as session:
        ids = [add_reminder(session, text=f"r{i}", due=T0 + minutes(1), timezone=LONDON, now=T0).id for i in range(4)]
        weekly = add_reminder(session, text="bins", due=T0 + minutes(1), timezone=LONDON, now=T0,
                              recurrence="FREQ=WEEKLY").id  # fmt: skip
    with connect(database_url) as db, db.session() as session:
        assert len(claim_due(session, T0 + minutes(1), "claim#1", 60)) == 5
        snooze(session, ids[2], T0 + minutes(30), T0 + minutes(1))  # the owner snoozed it meanwhile
    deliveries = [(rid, "claim#1", False) for rid in [*ids, weekly]]
    with connect(database_url) as db, db.session() as session:
        recorded = complete_many(session, deliveries, T0 + minutes(2))
        rows = [get_reminder(session, rid) for rid in [*ids, weekly]]
    assert recorded == [True, True, False, True, True]
    assert [r.status for r in rows] == ["delivered", "delivered", "pending", "delivered", "pending"]
    assert rows[2].due == T0 + minutes(30) and rows[4].due == T0 + minutes(1) + dt.timedelta(days=7)
    assert all(r.lease_owner is None for r in rows) and rows[0].delivered_at == T0 + minutes(2)


def test_a_lease_lost_between_the_read_and_the_update_is_reported(tmp_path: Any, monkeypatch: Any) -> None:
    from tars.store import reminders
    from tars.store.reminders import add_reminder, claim_due, complete_many, get_reminder, snooze

    url = f"sqlite:///{tmp_path / 'tars.db'}"
    with connect(url) as db, db.session() as session:
        ids = [add_reminder(session, text=f"r{i}", due=T0 + minutes(1), timezone=LONDON, now=T0).id for i in range(3)]
        assert len(claim_due(session, T0 + minutes(1), "claim#1", 60)) == 3
    real = reminders._apply_many

    def snooze_first(*args: Any, **kwargs: Any) -> int:  # the owner snoozes one just before the UPDATE
        with connect(url) as other, other.session() as s:
            snooze(s, ids[1], T0 + minutes(30), T0 + minutes(1))
        return real(*args, **kwargs)

    monkeypatch.setattr(reminders, "_apply_many", snooze_first)
    with connect(url) as db, db.session() as session:
        recorded = complete_many(session, [(rid, "claim#1", False) for rid in ids], T0 + minutes(2))
    assert recorded == [True, False, True]
    with connect(url) as db, db.session() as session:
        assert [get_reminder(session, rid).status for rid in ids] == ["delivered", "pending", "delivered"]
