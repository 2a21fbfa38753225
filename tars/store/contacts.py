"""The owner's contacts: add, find, change, remove; every input checked before anything is written.

Names are unique regardless of case and accents ("Zoë" and "zoe" are one person); phone
numbers are stored in E.164 (``phones.normalize_phone`` with the owner's region); a role is
one of the roles in tars.yaml or ``blocked``; a birthday is ``YYYY-MM-DD`` or ``--MM-DD``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from tars.store.errors import AlreadyExists, InvalidValue, NotFound
from tars.store.models import Contact, utcnow
from tars.store.phones import normalize_phone
from tars.store.resolve import Resolution, normalize, rank, resolve

if TYPE_CHECKING:
    from tars.project import Project

BLOCKED = "blocked"
DEFAULT_ROLE = "contact"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def name_key(name: str) -> str:
    """The form names are compared in: casefolded, accents removed, spaces collapsed."""

    return normalize(name)


@dataclass(frozen=True)
class Rules:
    """What a contact is checked against: the owner's region (for national numbers) and the
    role names in tars.yaml."""

    region: str
    roles: Collection[str]

    @classmethod
    def of(cls, project: Any) -> Rules:
        return cls(project.owner.region, tuple(project.roles))


# --------------------------------------------------------------------------- checks


def check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or not name_key(cleaned):
        raise InvalidValue("a contact needs a name", "e.g. tars contacts add 'Alice Smith' '+447700900123'")
    if len(cleaned) > 200:
        raise InvalidValue("that name is longer than 200 characters")
    return cleaned


def check_role(role: str, rules: Rules) -> str:
    if role == BLOCKED or role in rules.roles:
        return role
    known = ", ".join([*sorted(rules.roles), BLOCKED])
    raise InvalidValue(f"{role!r} is not a role", f"roles in tars.yaml: {known}")


def check_email(email: str | None) -> str | None:
    if not email:
        return None
    email = email.strip()
    if not _EMAIL.match(email):
        raise InvalidValue(f"{email!r} is not an email address", "e.g. alice@example.com")
    return email


def check_birthday(text: str | None) -> str | None:
    """ "1990-04-15", "19900415", "--04-15", "--0415" or "04-15" → "1990-04-15" / "--04-15"."""
    if not text:
        return None
    raw = text.strip()
    hint = "write it as YYYY-MM-DD, or --MM-DD when you do not know the year"
    full = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", raw)
    partial = re.fullmatch(r"(?:--)?(\d{2})-?(\d{2})", raw)
    day: dt.date | None = None
    try:
        if full:
            day = dt.date(int(full[1]), int(full[2]), int(full[3]))
        elif partial:
            dt.date(2000, int(partial[1]), int(partial[2]))  # a leap year: 29 February is fine
            return f"--{partial[1]}-{partial[2]}"
    except ValueError:
        day = None
    if day is None:
        raise InvalidValue(f"{text!r} is not a date", hint)
    if day > dt.date.today():
        raise InvalidValue(f"birthday {text!r} is in the future", hint)
    return day.isoformat()


def _text(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


# --------------------------------------------------------------------------- reading


def list_contacts(session: Session, role: str | None = None) -> list[Contact]:
    query = select(Contact).order_by(Contact.name_key)
    if role:
        query = query.where(Contact.role == role)
    return list(session.exec(query))


def contact_by_name(session: Session, name: str) -> Contact | None:
    """The contact with exactly this name (ignoring case and accents), or None."""
    return session.exec(select(Contact).where(Contact.name_key == name_key(name))).first()


def contact_by_phone(session: Session, phone: str) -> Contact | None:
    """The contact with this E.164 number (the oldest if several share it), or None."""
    return session.exec(select(Contact).where(Contact.phone == phone).order_by(col(Contact.id))).first()


def contact_relationship(session: Session, contact_id: int | None) -> str | None:
    """Who the contact is to the owner (``family``, ``sister`` …), or None."""
    contact = session.get(Contact, contact_id) if contact_id is not None else None
    return contact.relationship if contact is not None else None


def names_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Contact names for the given ids (None and unknown ids are left out)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(Contact.id, Contact.name).where(col(Contact.id).in_(wanted)))
    return {contact_id: name for contact_id, name in rows if contact_id is not None}


def get_contact(session: Session, name: str, *, fuzzy: bool = False) -> Contact:
    """The contact called ``name``; with ``fuzzy``, also the one clear fuzzy match.
    Raises NotFound (with "did you mean") otherwise."""

    contact = contact_by_name(session, name)
    if contact is not None:
        return contact
    everyone = list_contacts(session)
    ranked = [c for c in rank(name, contacts=everyone) if c.source == "contact"]
    if fuzzy and ranked:
        top = ranked[0]
        rivals = [c for c in ranked[1:] if c.score >= top.score - 0.05]
        if not rivals:
            return next(c for c in everyone if c.id == top.contact_id)
    candidates = [c.name for c in ranked] or _starting_with(name, everyone)
    if fuzzy and len(candidates) > 1:
        names = ", ".join(candidates[:8]) + (f" and {len(candidates) - 8} more" if len(candidates) > 8 else "")
        raise NotFound(f"'{name}' could mean several contacts: {names}", "give more of the name")
    if candidates:
        names = ", ".join(repr(c) for c in candidates[:5])
        hint = f"did you mean {names}?"
    else:
        hint = "see them with `tars contacts list`; add one with `tars contacts add NAME PHONE`"
    raise NotFound(f"no contact named {name!r}", hint)


def _starting_with(name: str, contacts: list[Contact]) -> list[str]:
    """The names of contacts with a word starting with ``name`` ("al" → Alice, Alicia), for
    short beginnings that fuzzy matching leaves alone."""

    start = normalize(name)
    if not start:
        return []
    return [c.name for c in contacts if any(w.startswith(start) for w in normalize(c.name).split())]


# --------------------------------------------------------------------------- writing


def add_contact(
    session: Session,
    rules: Rules,
    *,
    name: str,
    phone: str,
    email: str | None = None,
    relationship: str | None = None,
    birthday: str | None = None,
    role: str = DEFAULT_ROLE,
    notes: str | None = None,
) -> Contact:
    """A new contact; raises AlreadyExists or InvalidValue (and writes nothing) on bad input."""
    name = check_name(name)
    contact = Contact(
        name=name,
        name_key=name_key(name),
        phone=normalize_phone(phone, rules.region),
        email=check_email(email),
        relationship=_text(relationship),
        birthday=check_birthday(birthday),
        role=check_role(role, rules),
        notes=_text(notes),
    )
    existing = contact_by_name(session, name)
    if existing is not None:
        raise _duplicate(existing.name)
    session.add(contact)
    _flush(session, name)
    return contact


def edit_contact(session: Session, rules: Rules, name: str, /, **changes: str | None) -> Contact:
    """Change the named contact. ``changes`` may hold name, phone, email, relationship,
    birthday, role, notes; ``None`` leaves a field alone, ``""`` clears an optional one."""
    allowed = {"name", "phone", "email", "relationship", "birthday", "role", "notes"}
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"unknown contact fields: {', '.join(sorted(unknown))}")
    contact = get_contact(session, name)
    values: dict[str, Any] = {}
    for field, value in changes.items():
        if value is None:
            continue
        if field == "name":
            new_name = check_name(value)
            other = contact_by_name(session, new_name)
            if other is not None and other.id != contact.id:
                raise _duplicate(other.name)
            values.update(name=new_name, name_key=name_key(new_name))
        elif field == "phone":
            if not value.strip():
                raise InvalidValue("a contact must keep a phone number")
            values["phone"] = normalize_phone(value, rules.region)
        elif field == "role":
            values["role"] = check_role(value or DEFAULT_ROLE, rules)
        elif field == "email":
            values["email"] = check_email(value)
        elif field == "birthday":
            values["birthday"] = check_birthday(value)
        else:
            values[field] = _text(value)
    if not values:
        raise InvalidValue(
            f"nothing to change for {contact.name!r}",
            "give at least one of --name, --phone, --email, …",
        )
    for field, value in values.items():
        setattr(contact, field, value)
    contact.updated_at = utcnow()
    session.add(contact)
    _flush(session, contact.name)
    return contact


def remove_contact(session: Session, name: str) -> Contact:
    contact = get_contact(session, name)
    session.delete(contact)
    session.flush()
    return contact


def _duplicate(name: str) -> AlreadyExists:
    return AlreadyExists(
        f"there is already a contact named {name!r}",
        f"change it with `tars contacts edit {_quote(name)} --phone …`, or choose another name",
    )


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[\w.-]+", name) else f"'{name}'"


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent add of the same name
        session.rollback()
        raise _duplicate(name) from exc


def contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.name,
        "phone": contact.phone,
        "email": contact.email,
        "relationship": contact.relationship,
        "birthday": contact.birthday,
        "role": contact.role,
        "notes": contact.notes,
        "created_at": contact.created_at.isoformat(),
        "updated_at": contact.updated_at.isoformat(),
    }


def resolve_in(session: Session, project: Project, query: str) -> Resolution:
    """``tars.store.resolve.resolve`` against the project's contacts (from the store) and directory."""
    return resolve(query, contacts=list_contacts(session), directory=project.directory, region=project.owner.region)
