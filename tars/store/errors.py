"""What can go wrong in the store, in words the user can act on.

Every error here is a ``UserError`` (exit code 1 in the CLI, message plus hint); the server
and tools catch ``StoreError`` to tell the caller what was wrong.
"""

from __future__ import annotations

from tars.errors import UserError


class StoreError(UserError):
    """A store problem the user can fix; the message says what, the hint how."""


class DatabaseError(StoreError):
    """The database cannot be used: locked, read-only, unreachable, or from a newer TARS."""


class NotFound(StoreError):
    """No contact, reminder or call by that name or id."""


class AlreadyExists(StoreError):
    """A contact by that name already exists."""


class InvalidValue(StoreError):
    """A value that cannot be stored: a bad phone number, role, birthday or time."""


#: The largest id a row can have (a signed 64-bit integer, in SQLite and PostgreSQL alike).
MAX_ID = 2**63 - 1


def is_row_id(value: object) -> bool:
    """True if ``value`` could be a row's id (1 to ``MAX_ID``): a larger one names nothing."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID
