"""Errors a person can fix, raised anywhere in TARS (store, time parsing, the CLI, the API).

Kept outside ``tars.cli`` so that the store, the server and the tools need not import the
command line to raise one. ``tars.cli.errors`` re-exports ``UserError`` and ``USER_ERROR``.
"""

from __future__ import annotations

#: The exit code of a user-fixable error (see tars.cli.errors for the others).
USER_ERROR = 1


class UserError(Exception):
    """Something the user can fix; the message says what and how. Exit code 1."""

    def __init__(self, message: str, hint: str | None = None, code: int = USER_ERROR):
        super().__init__(message)
        self.hint = hint
        self.code = code
