"""Moving a call's model session to a new connection when the Live service says ``goAway``.

The service closes every connection after about ten minutes (and, without compression, the
whole session after fifteen), announcing it with ``goAway{timeLeft}`` first
(https://ai.google.dev/gemini-api/docs/live-session, "GoAway message"). pipecat 1.14 ignores
the notice and reconnects only after the close, mid-sentence if need be, dropping the caller's
audio while it reconnects. TARS hands over instead, at a moment of its choosing:

* **at a turn boundary**: once the latest ``sessionResumptionUpdate`` is ``resumable`` with a
  handle and the model is neither speaking nor waiting for a tool's result. A handle is the
  session as it was when it was issued ("the session can be resumed at this point";
  ``resumable: false`` while "the model is executing function calls or just generating",
  google-genai ``LiveServerSessionResumptionUpdate``), so a turn is never cut and a tool
  result always reaches the connection that asked for it;
* **close, then resume**: the service refuses to resume a session while an earlier socket of
  it is still open ("Gemini rejects a resume with 1011 while an earlier socket of the same
  session is still open", verified against the live API in
  https://github.com/aicc2025/sip-to-ai/pull/14), so the old connection is closed by TARS
  first and the new one opened with the handle at once, long before the service's deadline;
* **no caller audio lost**: the audio sent since the handle was issued is not in the state
  the handle resumes, so it is kept (``Handover.sent``) and sent again to the new connection,
  followed by what the caller said while it connected (``Handover.held``).

The same move cures a stalled session (``tars.calls.watchdog``): ``begin`` and ``finish`` serve
its reconnect too, and ``carries`` says whether the audio sent again holds the caller's
unanswered words.

A second ``goAway`` right after a handover, naming the same deadline, means the *session*
ends (its limit, not the connection's): another handover cannot help, and the call ends as
the service ends it, with the reason recorded (``CallSession.model_failed``).
"""

from __future__ import annotations

import re
import time
from typing import Any

#: Caller audio kept for a resend (16 kHz, 16-bit mono): 30 s. A handle older than that is
#: replaced at the next turn boundary anyway.
MAX_KEPT_BYTES = 30 * 16000 * 2
#: Two goAway deadlines this close together are the same deadline (the session's).
SAME_DEADLINE_S = 1.5


def seconds_left(time_left: str | None) -> float | None:
    """A protobuf Duration in JSON (``"50s"``, ``"0.991s"``) as seconds; None if unreadable."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", time_left or "")
    return float(match.group(1)) if match else None


class Handover:
    """What one call's Live service needs to hand its session over, and when it may."""

    def __init__(self) -> None:
        self.due = False  # a goAway was received; the handover has not happened yet
        self.switching = False  # the old connection is closed, the new one not ready yet
        self.resumable = False  # the latest update was resumable and nothing started since
        self.deadline: float | None = None  # when the service closes the current connection
        self.last_deadline: float | None = None  # the deadline the previous handover escaped
        self.sent: list[Any] = []  # caller audio frames sent since the latest resumable handle
        self.held: list[Any] = []  # caller audio frames received while switching
        self.handovers = 0
        self.kept_since: float | None = None  # when ``sent`` began (None: none kept, or trimmed)
        self._resent = 0  # how many of ``held`` are the resend (``begin``)
        self._sent_bytes = 0

    def noticed(self, time_left: str | None) -> bool:
        """A ``goAway``: will a handover be tried? Not when it names the deadline the last
        handover already moved away from (the session itself is ending)."""
        left = seconds_left(time_left)
        self.deadline = time.monotonic() + left if left is not None else None
        if (
            self.deadline is not None
            and self.last_deadline is not None
            and abs(self.deadline - self.last_deadline) < SAME_DEADLINE_S
        ):
            self.due = False
            return False
        self.due = True
        return True

    def updated(self, resumable: bool) -> None:
        """A ``sessionResumptionUpdate``: a resumable one starts a new restore point."""
        self.resumable = resumable
        if resumable:
            self.sent.clear()
            self._sent_bytes = 0
            self.kept_since = time.monotonic()

    def busy(self) -> None:
        """The model started a turn or a tool call: no handover until the next resumable handle."""
        self.resumable = False

    def ready(self, *, responding: bool, tools_pending: bool) -> bool:
        return self.due and not self.switching and self.resumable and not responding and not tools_pending

    def begin(self) -> None:
        self.switching = True
        self.due = False
        self.last_deadline = self.deadline
        self._resent = len(self.sent)
        self.held = [*self.sent, *self.held]
        self.sent, self._sent_bytes = [], 0

    def carries(self, heard_at: float) -> bool:
        """Does the audio kept for a resend hold what the caller said at ``heard_at`` (monotonic,
        when its transcription came)? Only if the handle is older, and nothing was trimmed."""
        return bool(self.sent) and self.kept_since is not None and self.kept_since <= heard_at

    def drop_resend(self) -> None:
        """A new session, not the resumed one: the audio since the old handle is not sent again
        (what it said is in the new session's seed); what the caller says while switching is."""
        self.held = self.held[self._resent :]
        self._resent = 0

    def keep(self, frame: Any, *, sent: bool) -> None:
        """Caller audio: ``sent`` to the current connection (kept for a resend), or held."""
        if not sent:
            self.held.append(frame)
            return
        self.sent.append(frame)
        self._sent_bytes += len(frame.audio)
        while len(self.sent) > 1 and self._sent_bytes > MAX_KEPT_BYTES:
            self._sent_bytes -= len(self.sent.pop(0).audio)
            self.kept_since = None  # the oldest audio is gone

    def finish(self) -> list[Any]:
        """The new connection is ready: the audio to send it, oldest first."""
        frames, self.held = self.held, []
        self.switching = False
        self.resumable = False
        self._resent = 0
        self.handovers += 1
        return frames
