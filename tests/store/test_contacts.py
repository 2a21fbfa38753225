"""`tars contacts`: the owner's address book, through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from store_helpers import Store, seed_contact
from typer.testing import Result

Tars = Callable[..., Result]


def added(tars: Tars, *args: str) -> dict[str, object]:
    result = tars("contacts", "add", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_list_show_edit_remove(store: Store, tars: Tars) -> None:
    alice = added(tars, "Alice Smith", "07700 900123", "--relationship", "sister", "--birthday", "1990-04-15")
    assert alice["phone"] == "+447700900123"  # national number, read in the owner's region (GB)
    assert alice["role"] == "contact"
    added(tars, "Zoë Brown", "+36 30 123 4567", "--role", "owner", "--email", "zoe@example.com")

    listing = tars("contacts", "list")
    assert listing.exit_code == 0
    assert "Alice Smith" in listing.stdout and "+44 7700 900123" in listing.stdout
    assert [c["name"] for c in json.loads(tars("contacts", "list", "--json").stdout)] == [
        "Alice Smith",
        "Zoë Brown",
    ]
    assert [c["name"] for c in json.loads(tars("contacts", "list", "--role", "owner", "--json").stdout)] == [
        "Zoë Brown"
    ]

    shown = tars("contacts", "show", "zoe brown")  # case and accents do not matter
    assert shown.exit_code == 0 and "zoe@example.com" in shown.stdout
    assert json.loads(tars("contacts", "show", "alice", "--json").stdout)["name"] == "Alice Smith"  # one clear match

    edited = tars(
        "contacts",
        "edit",
        "alice smith",
        "--phone",
        "+447700900999",
        "--email",
        "a@example.com",
        "--json",
    )
    assert edited.exit_code == 0, edited.output
    assert json.loads(edited.stdout)["phone"] == "+447700900999"
    cleared = json.loads(tars("contacts", "edit", "Alice Smith", "--email", "", "--name", "Alice S.", "--json").stdout)
    assert cleared["email"] is None and cleared["name"] == "Alice S."

    removed = tars("contacts", "rm", "Alice S.")
    assert removed.exit_code == 0 and "Removed Alice S." in removed.stdout
    assert [c["name"] for c in json.loads(tars("contacts", "list", "--json").stdout)] == ["Zoë Brown"]


def test_empty_list_says_how_to_add(store: Store, tars: Tars) -> None:
    result = tars("contacts", "list")
    assert result.exit_code == 0 and "tars contacts add" in result.stdout


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["Alice Smith", "+447700900111"],
            "there is already a contact named 'Alice Smith'",
            "tars contacts edit",
        ),
        (
            ["ALICE SMITH", "+447700900111"],
            "there is already a contact named 'Alice Smith'",
            "tars contacts edit",
        ),
        (["Bob", "12345"], "'12345' is not a valid phone number", "country code"),
        (["Bob", "not a number"], "'not a number' is not a phone number", "country code"),
        (["Bob", "+447700900111", "--role", "family"], "'family' is not a role", "blocked"),
        (
            ["Bob", "+447700900111", "--birthday", "1990-02-30"],
            "'1990-02-30' is not a date",
            "YYYY-MM-DD",
        ),
        (
            ["Bob", "+447700900111", "--email", "bob-at-example"],
            "'bob-at-example' is not an email",
            "@",
        ),
        (["  ", "+447700900111"], "a contact needs a name", "tars contacts add"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    store: Store, tars: Tars, args: list[str], message: str, hint: str
) -> None:
    seed_contact(store, "Alice Smith", "+447700900123")
    before = store.snapshot()
    result = tars("contacts", "add", *args)
    assert result.exit_code == 1
    assert message in result.stderr and hint in result.stderr
    assert "Traceback" not in result.output
    assert store.snapshot() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "Nobody"], "no contact named 'Nobody'"),
        (
            ["edit", "Alise Smith", "--notes", "x"],
            "no contact named 'Alise Smith'",
        ),  # edit wants the exact name
        (["rm", "Alice"], "no contact named 'Alice'"),
        (["edit", "Alice Smith", "--role", "boss"], "'boss' is not a role"),
        (["edit", "Alice Smith", "--name", "bob"], "there is already a contact named 'Bob'"),
        (["edit", "Alice Smith", "--phone", ""], "must keep a phone number"),
        (["edit", "Alice Smith"], "nothing to change"),
    ],
)
def test_unknown_contacts_and_bad_edits_change_nothing(store: Store, tars: Tars, args: list[str], message: str) -> None:
    seed_contact(store, "Alice Smith", "+447700900123")
    seed_contact(store, "Bob", "+447700900456")
    before = store.snapshot()
    result = tars("contacts", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert store.snapshot() == before


def test_unknown_contact_suggests_close_names(store: Store, tars: Tars) -> None:
    seed_contact(store, "Alice Smith", "+447700900123")
    result = tars("contacts", "rm", "Alise Smith")
    assert result.exit_code == 1
    assert "did you mean 'Alice Smith'?" in result.stderr


VCARDS = """\
BEGIN:VCARD
VERSION:3.0
FN:Alice Smith
N:Smith;Alice;;;
TEL;TYPE=HOME:020 7946 0000
TEL;TYPE=CELL:07700 900123
EMAIL;TYPE=INTERNET:alice@example.com
BDAY:1990-04-15
NOTE:Prefers texts\\, not calls
END:VCARD
BEGIN:VCARD
VERSION:2.1
N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Brown;Zo=C3=AB;;;
TEL;CELL;PREF:+36 30 123 4567
BDAY:--0229
END:VCARD
BEGIN:VCARD
VERSION:4.0
FN:No Number
EMAIL:nobody@example.com
END:VCARD
BEGIN:VCARD
VERSION:4.0
FN:Bad Number
TEL;VALUE=uri:tel:12345
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Alice Smith
TEL:+447700900999
END:VCARD
"""


def test_import_vcards_reports_what_was_skipped(store: Store, tars: Tars, tmp_path: Path) -> None:
    path = tmp_path / "contacts.vcf"
    path.write_text(VCARDS.replace("\n", "\r\n"))
    result = tars("contacts", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == ["Alice Smith", "Zoë Brown"]
    assert [(s["where"], s["name"]) for s in report["skipped"]] == [
        ("card 3", "No Number"),
        ("card 4", "Bad Number"),
        ("card 5", "Alice Smith"),
    ]
    reasons = [s["reason"] for s in report["skipped"]]
    assert reasons[0] == "no phone number"
    assert "not a valid phone number" in reasons[1]
    assert "already a contact named 'Alice Smith'" in reasons[2]

    contacts = {c["name"]: c for c in json.loads(tars("contacts", "list", "--json").stdout)}
    assert contacts["Alice Smith"]["phone"] == "+447700900123"  # the mobile, not the landline
    assert contacts["Alice Smith"]["notes"] == "Prefers texts, not calls"
    assert contacts["Zoë Brown"]["birthday"] == "--02-29"


def test_import_lists_a_card_cut_off_before_its_end(store: Store, tars: Tars, tmp_path: Path) -> None:
    path = tmp_path / "cut.vcf"
    path.write_text(
        "BEGIN:VCARD\nFN:Half Written\nTEL:+447700900111\n"  # no END:VCARD before the next card
        "BEGIN:VCARD\nFN:Whole\nTEL:+447700900222\nEND:VCARD\n"
        "BEGIN:VCARD\nFN:Truncated\nTEL:+4477009"  # the file ends mid-card
    )
    result = tars("contacts", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == ["Whole"]
    cut = "the card is cut off: no END:VCARD before the next card or the end of the file"
    assert [(s["where"], s["name"], s["reason"]) for s in report["skipped"]] == [
        ("card 1", "Half Written", cut),
        ("card 3", "Truncated", cut),
    ]


def test_import_csv_in_people_words(store: Store, tars: Tars, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "First Name,Last Name,Mobile Phone,E-mail Address,Birthday,Role\n"
        "Alice,Smith,07700 900123,alice@example.com,1990-04-15,contact\n"
        "Bob,Jones,,bob@example.com,,\n"
        "Carol,King,07700 900456,,,boss\n"
        "\n"
        "Dan,Day,+1 202 555 0199,,,\n"
    )
    result = tars("contacts", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "Imported 2 contacts" in result.stdout
    assert "Skipped 2" in result.stdout
    assert "line 3" in result.stdout and "no phone number" in result.stdout
    assert "line 4" in result.stdout and "'boss' is not a role" in result.stdout
    names = [c["name"] for c in json.loads(tars("contacts", "list", "--json").stdout)]
    assert names == ["Alice Smith", "Dan Day"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", "hello", "not a .vcf or .csv file"),
        ("people.csv", "colour,size\nred,big\n", "has no name and phone columns"),
        ("cards.vcf", "hello\n", "no vCards in this file"),
        ("missing.csv", None, "cannot read"),
    ],
)
def test_import_refuses_files_it_cannot_read(
    store: Store, tars: Tars, tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    result = tars("contacts", "import", str(path))
    assert result.exit_code == 1
    assert message in result.stderr
