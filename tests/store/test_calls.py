"""`tars calls`: what happened on each call, recorded as the server records it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from store_helpers import Store
from typer.testing import Result

from tars.store import calls

Tars = Callable[..., Result]
T0 = dt.datetime(2025, 3, 29, 9, 0, tzinfo=dt.UTC)


def record_dentist_call(store: Store) -> int:
    with store.session() as session:
        call = calls.start_call(
            session,
            direction="outbound",
            from_number="+447700900999",
            to_number="+442079460123",
            sid="CA0123456789abcdef0123456789abcdef",
            playbook="book_appointment",
            inputs={"when": "next week", "reason": "check-up"},
            status="in-progress",
            started_at=T0,
        )
        assert call.id is not None
        calls.add_line(session, call.id, "callee", "Bright Smile Dental, how can I help?", T0)
        calls.add_line(
            session, call.id, "assistant", "I'd like to book a check-up for Alex.", T0 + dt.timedelta(seconds=4)
        )
        calls.add_tool_invocation(
            session, call.id, "record_outcome", arguments={"status": "booked"}, allowed=True,
            result={"ok": True}, duration_ms=12, at=T0 + dt.timedelta(seconds=30),
        )  # fmt: skip
        calls.add_tool_invocation(
            session, call.id, "send_sms", arguments={"to": "+15550100"}, allowed=False,
            reason="send_sms is not offered to the delegate role", at=T0 + dt.timedelta(seconds=31),
        )  # fmt: skip
        calls.update_call(
            session,
            call.id,
            status="completed",
            ended_at=T0 + dt.timedelta(seconds=95),
            outcome={"status": "booked", "slot": "Tue 10:00"},
            outcome_source="recorded",
            summary="Booked a check-up for Tuesday at 10:00.",
        )
        return call.id


def test_calls_list_and_show(store: Store, tars: Tars) -> None:
    assert "No calls yet" in tars("calls", "list").stdout
    call_id = record_dentist_call(store)

    listing = tars("calls", "list")
    assert listing.exit_code == 0, listing.output
    assert "Sat 29 Mar 2025 10:00" in listing.stdout  # in the owner's timezone
    assert "book_appointment" in listing.stdout and "completed" in listing.stdout
    data = json.loads(tars("calls", "list", "--json").stdout)
    assert [c["id"] for c in data] == [call_id] and data[0]["duration_seconds"] == 95

    shown = tars("calls", "show", str(call_id))
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    for expected in (
        f"Call {call_id} to +442079460123 — completed",
        "10:00:00 callee: Bright Smile Dental, how can I help?",
        "record_outcome",
        "allowed",
        "denied",
        "send_sms is not offered to the delegate role",
        "Outcome (recorded)",
        '"slot": "Tue 10:00"',
        "Booked a check-up for Tuesday at 10:00.",
        "95 s",
    ):
        assert expected in text, expected

    by_sid = json.loads(tars("calls", "show", "CA0123456789abcdef0123456789abcdef", "--json").stdout)
    assert [t["allowed"] for t in by_sid["tools"]] == [True, False]
    assert by_sid["tools"][1]["reason"] == "send_sms is not offered to the delegate role"
    assert [line["speaker"] for line in by_sid["transcript"]] == ["callee", "assistant"]
    assert by_sid["outcome"] == {"status": "booked", "slot": "Tue 10:00"}


def test_unknown_call_is_a_clear_error(store: Store, tars: Tars) -> None:
    result = tars("calls", "show", "42")
    assert result.exit_code == 1 and "no call '42'" in result.stderr


def test_calls_are_checked_before_they_are_stored(store: Store) -> None:
    from tars.store.errors import InvalidValue

    with store.session() as session, pytest.raises(InvalidValue, match="not a call status"):
        calls.start_call(session, direction="outbound", from_number="+1", to_number="+2", status="lost")


def test_messages_wait_for_the_owner(store: Store) -> None:
    from tars.store import messages

    call_id = record_dentist_call(store)
    with store.session() as session:
        taken = messages.take_message(
            session,
            " Please call back about Tuesday. ",
            caller_number="+442079460123",
            caller_name="Bright Smile",
            call_id=call_id,
        )
        assert taken.text == "Please call back about Tuesday."
        assert [m.id for m in messages.undelivered(session)] == [taken.id]
        assert taken.id is not None
        delivered = messages.mark_message(session, taken.id, "delivered", T0)
        assert delivered.delivered_at == T0
        assert messages.undelivered(session) == []
        assert messages.message_json(delivered)["status"] == "delivered"
