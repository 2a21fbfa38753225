"""Who is calling: the owner, a contact (with their role), a blocked number, or unknown."""

from __future__ import annotations

from dataclasses import dataclass

from tars.project import Project

OWNER, CONTACT, UNKNOWN, BLOCKED = "owner", "contact", "unknown", "blocked"


@dataclass(frozen=True)
class Caller:
    number: str
    role: str
    name: str | None = None
    contact_id: int | None = None

    @property
    def greeting_kind(self) -> str:
        """Which persona greeting fits: owner, contact (any known role) or unknown."""
        if self.role == OWNER:
            return OWNER
        return CONTACT if self.contact_id is not None else UNKNOWN


def identify(project: Project, database: object, number: str) -> Caller:
    """Map a caller's E.164 number to a role; a number in no record is ``unknown``."""
    if number == project.owner.phone:
        return Caller(number, OWNER, project.owner.name)
    from tars.store.contacts import contact_by_phone

    with database.session() as session:  # type: ignore[attr-defined]
        contact = contact_by_phone(session, number)
    if contact is None:
        return Caller(number, UNKNOWN)
    role = contact.role if contact.role in project.roles or contact.role == BLOCKED else CONTACT
    return Caller(number, role, contact.name, contact.id)
