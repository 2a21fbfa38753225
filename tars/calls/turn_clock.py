"""How long a call's own path holds the audio, turn by turn (``tars_turn_added_latency_seconds``).

bench/ measures the added latency from outside: from the caller's last audio leaving the
Twilio end to the reply's first audio reaching it, less the model's own share. Inside the
server the same two legs are timed on one monotonic clock:

* **way in**: an audio frame read from Twilio's socket (``PhoneLineSerializer``) until it is
  written to Gemini's (``GatedGeminiLive._send_user_audio``); the leg of the last audio
  sent before the reply began counts;
* **way out**: the reply's first audio read from Gemini's socket until its first frame is
  written to Twilio's.

A turn's added latency is their sum; ``on_turn`` is told it with the moment the turn's last
audio arrived (a turn's span runs from there to the reply's first audio leaving). The call's
first reply (the greeting, or the first answer on a goal call) is timed from the stream
opening instead (``tars_first_reply_seconds``). Only the clock is here; the figures go to
``tars.metrics`` and ``tars.telemetry``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

STAMP = "tars_received_at"  # Frame.metadata key: when the frame's audio arrived from Twilio


class TurnClock:
    def __init__(
        self,
        on_turn: Callable[[float, float], None],
        on_first_reply: Callable[[float], None],
        clock: Callable[[], float] = time.monotonic,
    ):
        self._on_turn = on_turn
        self._on_first_reply = on_first_reply
        self._clock = clock
        self.opened_at = clock()
        self._way_in: float | None = None  # the leg of the latest audio sent to the model
        self._heard_at: float | None = None  # when that audio arrived from Twilio
        self._reply_at: float | None = None  # when the current reply's first audio arrived
        self._replying = False  # between a reply's first audio and its turn's end
        self._first_sent = False
        self.turns: list[float] = []  # this call's added latencies, in seconds
        self.replies = 0  # replies whose audio has begun (the stall watchdog counts them)
        self.last_sent: float | None = None  # when TARS's latest audio went to Twilio (paced in real time)

    @property
    def replying(self) -> bool:
        """Between a reply's first audio and the end of its turn."""
        return self._replying

    def received(self) -> float:
        """A stamp for audio just read from Twilio's socket."""
        return self._clock()

    def sent_to_model(self, received_at: float) -> None:
        if not self._replying:
            self._way_in = self._clock() - received_at
            self._heard_at = received_at

    def reply_audio_arrived(self) -> None:
        if not self._replying:
            self._replying = True
            self.replies += 1
            self._reply_at = self._clock()

    def reply_audio_sent(self) -> None:
        now = self.last_sent = self._clock()
        if not self._first_sent:  # the greeting (or the first answer): timed from the answer
            self._first_sent = True
            self._reply_at = None
            self._on_first_reply(now - self.opened_at)
            return
        if self._reply_at is None:
            return
        way_out, self._reply_at = now - self._reply_at, None
        if self._way_in is None:
            return
        added = self._way_in + way_out
        self._way_in = None
        self.turns.append(added)
        self._on_turn(added, self._heard_at if self._heard_at is not None else now)

    def reply_ended(self) -> None:
        """The model's turn is over (turn complete or interrupted): the next audio is a new reply."""
        self._replying = False
        self._reply_at = None
