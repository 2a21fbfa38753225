"""Keys the other party presses, passed to the model as text it can act on.

pipecat turns Twilio's ``dtmf`` events into ``InputDTMFFrame``s, but nothing reaches
Gemini Live from them on its own (its DTMF aggregator only updates the local context).
Text does: digits are collected until ``#`` or a short pause and sent as one
``InputTextRawFrame``. The owner's PIN is never passed on.

Every audio frame of the call crosses this processor on its way in, so it runs in
pipecat's direct mode (no queue and task of its own) and never waits for anything: the
note it makes of the keys (the call's transcript) is queued, not written, on the spot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pipecat.frames.frames import Frame, InputDTMFFrame, InputTextRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

PAUSE_SECONDS = 1.5


class KeypadToText(FrameProcessor):
    def __init__(self, note: Callable[[str], Awaitable[None]], secret: str | None = None, pause: float = PAUSE_SECONDS):
        super().__init__(enable_direct_mode=True)
        self._note = note
        self._secret = secret
        self._pause = pause
        self._digits = ""
        self._timer: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame):
            digit = str(frame.button.value)
            if self._timer is not None:
                self._timer.cancel()
            if digit == "#":
                await self._flush("#")
            else:
                self._digits += digit
                self._timer = asyncio.ensure_future(self._later())
            return
        await self.push_frame(frame, direction)

    async def _later(self) -> None:
        await asyncio.sleep(self._pause)
        await self._flush("")

    async def _flush(self, end: str) -> None:
        digits, self._digits = self._digits + end, ""
        if not digits:
            return
        if self._secret and self._secret in digits:
            digits = digits.replace(self._secret, "••••")
        await self._note(f"pressed {digits}")
        await self.push_frame(InputTextRawFrame(f"[The caller pressed the keys: {digits}]"))
