"""Birthdays do something: a contact's birthday becomes a yearly reminder for the owner, the
configured days before it (tars.yaml ``birthdays:``), visible in `tars remind list`, and it
follows the contact when it is added, imported, edited or removed."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store_helpers import NOW, Store
from typer.testing import Result

Tars = Callable[..., Result]
#: NOW is Saturday 29 March 2025, 10:00 in Budapest.


def reminders(tars: Tars, *args: str) -> list[dict[str, Any]]:
    result = tars("remind", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def test_a_contact_with_a_birthday_produces_a_reminder_before_it(store: Store, tars: Tars) -> None:
    ok(tars("contacts", "add", "Helen Carter", "+447700900123", "--birthday", "1990-04-15"))
    [reminder] = reminders(tars)
    assert reminder["text"] == "Helen Carter's birthday is tomorrow (15 April)"
    assert reminder["due_local"] == "2025-04-14T09:00:00+02:00"  # the day before, at 09:00 in Budapest
    assert dt.datetime.fromisoformat(reminder["due"]) > dt.datetime.fromisoformat(NOW)
    assert reminder["repeat"] == "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=14;BYHOUR=9;BYMINUTE=0;BYSECOND=0"
    assert (reminder["via"], reminder["kind"], reminder["contact"]) == ("sms", "birthday", "Helen Carter")
    assert reminder["repeat_text"] == "every year on 14 April at 09:00"
    shown = " ".join(ok(tars("remind", "list")).stdout.split())
    assert "Mon 14 Apr 2025 09:00" in shown and "birthday" in shown

    # Edited: the same reminder moves; cleared: it is withdrawn; given again: it comes back.
    ok(tars("contacts", "edit", "Helen Carter", "--birthday", "--05-01"))
    [moved] = reminders(tars)
    assert moved["id"] == reminder["id"] and moved["due_local"] == "2025-04-30T09:00:00+02:00"
    assert moved["text"] == "Helen Carter's birthday is tomorrow (1 May)"
    ok(tars("contacts", "edit", "Helen Carter", "--birthday", ""))
    assert reminders(tars) == []
    ok(tars("contacts", "edit", "Helen Carter", "--birthday", "--05-01"))
    assert [r["id"] for r in reminders(tars)] == [reminder["id"]]

    # Removed: no more reminders of their birthday.
    ok(tars("contacts", "rm", "Helen Carter"))
    assert reminders(tars) == []


def test_the_lead_time_and_channel_come_from_tars_yaml(store: Store, tars: Tars) -> None:
    ok(tars("contacts", "add", "Helen Carter", "+447700900123", "--birthday", "1990-04-15"))
    config = store.root / "tars.yaml"
    text = config.read_text()
    old = "birthdays:  # contacts' birthdays become yearly reminders for you (tars remind list)\n"
    old += '  days_before: 1\n  at: "09:00"\n  via: sms\n'
    assert old in text
    config.write_text(text.replace(old, 'birthdays:\n  days_before: 7\n  at: "18:30"\n  via: call\n'))
    ok(tars("contacts", "add", "Ben Hill", "+447700900124", "--birthday", "--04-02"))  # any change re-syncs
    found = {r["contact"]: r for r in reminders(tars)}
    assert found["Helen Carter"]["text"] == "Helen Carter's birthday is in 7 days (15 April)"
    assert found["Helen Carter"]["due_local"] == "2025-04-08T18:30:00+02:00"
    assert found["Helen Carter"]["via"] == "call"
    # Ben's is in four days: seven days before it has passed this year, so the first is next year.
    assert found["Ben Hill"]["due_local"] == "2026-03-26T18:30:00+01:00"


def test_a_cancelled_birthday_reminder_stays_cancelled(store: Store, tars: Tars) -> None:
    ok(tars("contacts", "add", "Helen Carter", "+447700900123", "--birthday", "1990-04-15"))
    [reminder] = reminders(tars)
    ok(tars("remind", "rm", str(reminder["id"])))
    ok(tars("contacts", "add", "Ben Hill", "+447700900124"))
    assert reminders(tars) == []


def test_imported_birthdays_become_reminders(store: Store, tars: Tars, tmp_path: Path) -> None:
    cards = tmp_path / "contacts.vcf"
    cards.write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Alice Smith\r\nTEL;TYPE=CELL:07700 900123\r\nBDAY:1990-04-15\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoe Brown\r\nTEL:+36 30 123 4567\r\nBDAY:--0229\r\nEND:VCARD\r\n"
    )
    ok(tars("contacts", "import", str(cards)))
    found = {r["contact"]: r for r in reminders(tars)}
    assert found["Alice Smith"]["due_local"] == "2025-04-14T09:00:00+02:00"
    # 29 February: on the 28th in a year without one, the day before that.
    assert found["Zoe Brown"]["due_local"] == "2026-02-27T09:00:00+01:00"
    assert found["Zoe Brown"]["text"] == "Zoe Brown's birthday is tomorrow (29 February)"
