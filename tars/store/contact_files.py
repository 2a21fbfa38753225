"""Contacts from files: vCard (``.vcf``, versions 2.1 to 4.0) and CSV (a header row; Google's
and Outlook's exports work), each card or row checked like ``tars contacts add`` would, and
every one that is skipped reported with the reason.
"""

from __future__ import annotations

import csv
import io
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlmodel import Session

from tars.store.contacts import Rules, add_contact
from tars.store.errors import InvalidValue, StoreError


@dataclass(frozen=True)
class Card:
    """One person read from a file, before checking. ``where`` is "card 3" or "line 7"."""

    where: str
    name: str = ""
    phone: str = ""
    email: str = ""
    relationship: str = ""
    birthday: str = ""
    notes: str = ""
    role: str = ""
    #: Why the card cannot be imported whatever it holds (it was cut off before END:VCARD).
    broken: str = ""


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (where, name, why)


def import_contacts(session: Session, rules: Rules, path: Path) -> ImportReport:
    """Add every good card in ``path``; report the rest. Unreadable files raise InvalidValue."""
    report = ImportReport()
    for card in read_cards(path):
        label = card.name or "(no name)"
        if card.broken:
            report.skipped.append((card.where, label, card.broken))
            continue
        if not card.name.strip():
            report.skipped.append((card.where, label, "no name"))
            continue
        if not card.phone.strip():
            report.skipped.append((card.where, label, "no phone number"))
            continue
        try:
            contact = add_contact(
                session,
                rules,
                name=card.name,
                phone=card.phone,
                email=card.email or None,
                relationship=card.relationship or None,
                birthday=card.birthday or None,
                role=card.role or "contact",
                notes=card.notes or None,
            )
        except StoreError as exc:
            report.skipped.append((card.where, label, str(exc)))
            continue
        report.added.append(contact.name)
    return report


def read_cards(path: Path) -> list[Card]:
    suffix = path.suffix.lower()
    if suffix not in (".vcf", ".vcard", ".csv"):
        raise InvalidValue(f"{path.name}: not a .vcf or .csv file", "export your contacts as vCard or CSV")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidValue(f"cannot read {path}: {exc.strerror}") from None
    text = _decode(raw)
    return read_vcards(text) if suffix in (".vcf", ".vcard") else read_csv(text, path.name)


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


# --------------------------------------------------------------------------- vCard


def read_vcards(text: str) -> list[Card]:
    cards: list[Card] = []
    current: dict[str, list[tuple[dict[str, list[str]], str]]] | None = None
    cut_off = "the card is cut off: no END:VCARD before the next card or the end of the file"
    for line in _unfold(text):
        name, params, value = _content_line(line)
        if name == "BEGIN" and value.upper() == "VCARD":
            if current is not None:  # the card before never ended
                cards.append(replace(_card(current, f"card {len(cards) + 1}"), broken=cut_off))
            current = {}
        elif name == "END" and value.upper() == "VCARD" and current is not None:
            cards.append(_card(current, f"card {len(cards) + 1}"))
            current = None
        elif current is not None and name:
            current.setdefault(name, []).append((params, value))
    if current is not None:
        cards.append(replace(_card(current, f"card {len(cards) + 1}"), broken=cut_off))
    if not cards and "BEGIN:VCARD" not in text.upper():
        raise InvalidValue("no vCards in this file (no BEGIN:VCARD)")
    return cards


def _unfold(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif lines and lines[-1].endswith("=") and "QUOTED-PRINTABLE" in lines[-1].split(":", 1)[0].upper():
            lines[-1] = lines[-1][:-1] + raw  # a quoted-printable soft line break
        else:
            lines.append(raw)
    return [line for line in lines if line.strip()]


def _content_line(line: str) -> tuple[str, dict[str, list[str]], str]:
    match = re.match(r'^((?:[^:"]|"[^"]*")*):(.*)$', line)
    if not match:
        return "", {}, ""
    head, value = match.group(1), match.group(2)
    parts = head.split(";")
    name = parts[0].split(".")[-1].upper()  # "item1.TEL" → "TEL"
    params: dict[str, list[str]] = {}
    for part in parts[1:]:
        key, _, val = part.partition("=")
        if not val:  # vCard 2.1: ";CELL;PREF"
            key, val = "TYPE", key
        params.setdefault(key.upper(), []).extend(v.strip('"').lower() for v in val.split(","))
    if "quoted-printable" in params.get("ENCODING", []):
        charset = (params.get("CHARSET") or ["utf-8"])[0]
        value = quopri.decodestring(value.encode("latin-1", "replace")).decode(charset, "replace")
    return name, params, value


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\,;nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value).strip()


def _card(props: dict[str, list[tuple[dict[str, list[str]], str]]], where: str) -> Card:
    def first(key: str) -> str:
        values = props.get(key)
        return _unescape(values[0][1]) if values else ""

    name = first("FN")
    if not name and "N" in props:
        family, given, additional = [*_split_unescaped(props["N"][0][1]), "", "", ""][:3]
        name = " ".join(p for p in (given, additional, family) if p)
    return Card(
        where=where,
        name=name,
        phone=_preferred(props.get("TEL", []), ("cell", "mobile", "iphone")).removeprefix("tel:"),
        email=_preferred(props.get("EMAIL", []), ("internet",)),
        birthday=_birthday(first("BDAY")),
        notes=first("NOTE"),
        relationship=first("X-RELATIONSHIP"),
    )


def _split_unescaped(value: str) -> list[str]:
    return [_unescape(p) for p in re.split(r"(?<!\\);", value)]


def _preferred(values: list[tuple[dict[str, list[str]], str]], liked: tuple[str, ...]) -> str:
    if not values:
        return ""

    def rank(item: tuple[dict[str, list[str]], str]) -> int:
        params = item[0]
        types = set(params.get("TYPE", []))
        if "pref" in types or params.get("PREF"):
            return 0
        return 1 if types & set(liked) else 2

    return _unescape(sorted(values, key=rank)[0][1])


def _birthday(value: str) -> str:
    value = value.strip()
    if "T" in value:
        value = value.split("T", 1)[0]
    return value


# --------------------------------------------------------------------------- CSV

_COLUMNS = {
    "name": ("name", "fullname", "displayname", "contactname", "contact"),
    "first": ("firstname", "givenname", "first"),
    "last": ("lastname", "familyname", "surname", "last"),
    "phone": (
        "phone", "phonenumber", "mobile", "mobilephone", "mobilenumber", "cell", "cellphone", "tel",
        "telephone", "phone1value", "primaryphone", "homephone", "businessphone", "otherphone",
    ),
    "email": ("email", "emailaddress", "email1value", "mail", "e-mail"),
    "relationship": ("relationship", "relation", "relationship1value"),
    "birthday": ("birthday", "bday", "dateofbirth", "dob", "birthdate"),
    "notes": ("notes", "note"),
    "role": ("role",),
}  # fmt: skip


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_csv(text: str, filename: str = "the file") -> list[Card]:
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        return _cards(reader, filename)
    except csv.Error as exc:  # a field over csv's limit, a NUL byte, an unclosed quote
        reason = str(exc)
        if "field larger than field limit" in reason:
            reason = f"a field is longer than {csv.field_size_limit()} characters"
        raise InvalidValue(
            f"{filename} line {reader.line_num}: {reason}",
            "fix or remove that line (a contact's fields are short: name, phone, email, notes)",
        ) from None


def _cards(reader: Iterator[list[str]], filename: str) -> list[Card]:
    header = next(reader, None)
    if not header:
        raise InvalidValue(f"{filename} is empty")
    keys = [re.sub(r"[^a-z0-9]", "", h.lower()) for h in header]
    where: dict[str, list[int]] = {}
    for field_name, names in _COLUMNS.items():
        where[field_name] = [i for name in names for i, key in enumerate(keys) if key == name]
    if not (where["name"] or where["first"] or where["last"]) or not where["phone"]:
        raise InvalidValue(
            f"{filename} has no name and phone columns (its header: {_shorten(', '.join(header))})",
            "the first row must name the columns, e.g. name,phone,email,relationship,birthday,role,notes",
        )
    cards = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue

        def get(field_name: str, row: list[str] = row) -> str:
            for i in where[field_name]:
                if i < len(row) and row[i].strip():
                    return row[i].split(" ::: ")[0].strip()  # Google joins several with :::
            return ""

        name = get("name") or " ".join(p for p in (get("first"), get("last")) if p)
        cards.append(
            Card(
                where=f"line {reader.line_num}",
                name=name,
                phone=get("phone"),
                email=get("email"),
                relationship=get("relationship"),
                birthday=get("birthday"),
                notes=get("notes"),
                role=get("role"),
            )
        )
    return cards
