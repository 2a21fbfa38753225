"""How long an emulated Live session and connection may last, and how they end.

The real service (ai.google.dev/gemini-api/docs/live-session, "Session lifetime"):
"Without compression, audio-only sessions are limited to 15 minutes ... Exceeding these
limits will terminate the session (and therefore, the connection), but you can use
context window compression to extend sessions to an unlimited amount of time." Before
it closes, the server sends ``goAway`` whose ``timeLeft`` is "the remaining time before
the connection will be terminated as ABORTED" (google-genai's ``LiveServerGoAway``,
googleapis.github.io/js-genai ... types.LiveServerGoAway). What a client then sees, from
a log in kizuna-ai-lab/sokuji#179 (an audio session without compression)::

    {"type":"goAway","data":{"timeLeft":"50s"}}
    {"type":"session.closed","data":{"code":1011,"reason":"Deadline expired before operation could complete."}}

So, per session (counted from its first setup, across resumed connections):

* no ``contextWindowCompression`` with a ``slidingWindow`` (the one compression
  mechanism ``ContextWindowCompressionConfig`` offers) in the latest setup: ``goAway``
  ``go_away_lead_s`` before ``session_limit_s``, then close **1011** with that reason;
  the session is over, so its resumption handles stop working;
* with compression: no session limit.

And per connection, whatever the compression: "The lifetime of a connection is limited
as well, to around 10 minutes ... you can configure a single session to stay active over
multiple connections using session resumption. You'll also receive a GoAway message
before the connection ends" (the same page). At ``connection_limit_s``: ``goAway``
ahead, then the same 1011 close (google/adk-python#4140: "when the session reaches the
10-minute mark, I consistently receive ... received 1011 (internal error) Deadline
expired before operation could complete."), but the session lives on: its latest handle
resumes it.

Resumption handles expire: "The resumption token is valid for 2 hours after the last
session termination" (ai.google.dev/gemini-api/docs/live-session, "Session resumption").
The emulator counts ``handle_lifetime_s`` from the end of the session's latest connection
(``handle_expired``); a setup with an expired handle is refused as an unknown one is.

The numbers are ``LiveOptions`` (defaults: the real 15 and 10 minutes; ``goAway`` 60 s
ahead, as docs.cloud.google.com ... live-api/start-manage-session describes), so a test
can shrink them to seconds; ``None`` turns a limit off.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Protocol

AUDIO_SESSION_LIMIT_S = 15 * 60.0
CONNECTION_LIMIT_S = 10 * 60.0
GO_AWAY_LEAD_S = 60.0
HANDLE_LIFETIME_S = 2 * 3600.0
DEADLINE_CODE = 1011
DEADLINE_REASON = "Deadline expired before operation could complete."


# What the clock needs of a ``LiveSession``, ``LiveOptions`` and ``LiveConnection``
# (Protocols, so that this module imports nothing of the emulator's others).


class Session(Protocol):
    @property
    def opened_at(self) -> float: ...

    @property
    def compressed(self) -> bool: ...


class Options(Protocol):
    @property
    def session_limit_s(self) -> float | None: ...

    @property
    def connection_limit_s(self) -> float | None: ...

    @property
    def go_away_lead_s(self) -> float: ...


class Connection(Protocol):
    @property
    def session(self) -> Session | None: ...

    @property
    def options(self) -> Options: ...

    @property
    def opened_at(self) -> float: ...

    async def send(self, frame: dict[str, Any]) -> None: ...

    async def end_session(self, code: int, reason: str) -> None: ...

    async def end_connection(self, code: int, reason: str) -> None: ...


def handle_expired(closed_at: float | None, connected: bool, lifetime_s: float | None) -> bool:
    """Has a session's handle expired (``lifetime_s`` after its latest connection ended)?"""
    if lifetime_s is None or connected or closed_at is None:
        return False
    return time.monotonic() - closed_at > lifetime_s


def session_limit(session: Session, options: Options) -> float | None:
    """Seconds this session may last, or None for no limit."""
    if options.session_limit_s is None or session.compressed:
        return None
    return options.session_limit_s


def duration(seconds: float) -> str:
    """A protobuf ``Duration`` in JSON, whole seconds rounded up (``"50s"``, as the service
    sends), or milliseconds below one second (``"0.500s"``)."""
    if seconds > 0.995:  # the few ms the clock took to get here do not count
        return f"{max(1, math.ceil(seconds - 0.005))}s"
    return f"{max(0.0, seconds):.3f}s"


async def enforce_limits(conn: Connection) -> None:
    """Run beside one connection: ``goAway``, then the close, at the first limit it reaches."""
    session = conn.session
    assert session is not None
    limits: list[tuple[float, float, str]] = []  # (deadline, length, which)
    session_s = session_limit(session, conn.options)
    if session_s is not None:
        limits.append((session.opened_at + session_s, session_s, "session"))
    connection_s = conn.options.connection_limit_s
    if connection_s is not None:
        limits.append((conn.opened_at + connection_s, connection_s, "connection"))
    if not limits:
        return
    deadline, length, which = min(limits)
    lead = min(conn.options.go_away_lead_s, length)
    await asyncio.sleep(max(0.0, deadline - lead - time.monotonic()))
    await conn.send({"goAway": {"timeLeft": duration(max(0.0, deadline - time.monotonic()))}})
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    if which == "session":
        await conn.end_session(DEADLINE_CODE, DEADLINE_REASON)
    else:
        await conn.end_connection(DEADLINE_CODE, DEADLINE_REASON)
