"""Caller input held back while the model waits, BLOCKING, for a tool's result.

On the 3.x Live models, new input while a BLOCKING function call is pending cancels the
call (``toolCallCancellation``; see ``tars.emulators.gemini.cancellation`` for the evidence): the
result, when it comes, has nowhere to go. Long-running tools are declared NON_BLOCKING where
the model supports it (``live_service``); for every other BLOCKING call the caller's audio
and any system text wait here while it runs, and go to the model, in order, the moment its
result has been sent. Clients of the service do the same (pipecat#1564: "use the
STTMuteFilter to mute the user's input while the function call is taking place";
autonomous-ai/autonomous-os#237 gates microphone audio while a Gemini tool call is
pending), but dropping input loses the caller's words, so here it is kept, up to
``MAX_HELD_SECONDS`` of audio (older audio goes first, past that).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_HELD_SECONDS = 60.0


@dataclass
class InputHold:
    """The BLOCKING calls pending, and the input that waits for them."""

    pending: set[str] = field(default_factory=set)
    held: deque[tuple[str, Any]] = field(default_factory=deque)  # ("audio", frame) | ("text", str)
    held_seconds: float = 0.0
    dropped_seconds: float = 0.0  # audio let go past MAX_HELD_SECONDS

    @property
    def holding(self) -> bool:
        return bool(self.pending)

    def start(self, ids: Iterable[str]) -> None:
        self.pending.update(ids)

    def keep(self, kind: str, item: Any, seconds: float = 0.0) -> None:
        self.held.append((kind, item))
        self.held_seconds += seconds
        while self.held_seconds > MAX_HELD_SECONDS and self.held:
            old_kind, old = self.held.popleft()
            if old_kind == "audio":
                length = audio_seconds(old)
                self.held_seconds -= length
                self.dropped_seconds += length
            else:  # text is small and matters: it stays
                self.held.appendleft((old_kind, old))
                break

    def finish(self, call_id: str) -> list[tuple[str, Any]]:
        """``call_id`` has its result (or is over): what to send now, if nothing else holds."""
        self.pending.discard(call_id)
        return self.release() if not self.pending else []

    def release(self) -> list[tuple[str, Any]]:
        """Everything held, in order; nothing is pending any more."""
        self.pending.clear()
        out = list(self.held)
        self.held.clear()
        self.held_seconds = 0.0
        return out


def audio_seconds(frame: Any) -> float:
    """The length of a pipecat audio frame (16-bit PCM)."""
    rate = getattr(frame, "sample_rate", 16000) or 16000
    channels = getattr(frame, "num_channels", 1) or 1
    return len(getattr(frame, "audio", b"")) / (2 * rate * channels)
