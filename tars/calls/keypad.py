"""Keys the other party presses, passed to the model as text it can act on.

pipecat turns Twilio's ``dtmf`` events into ``InputDTMFFrame``s, but nothing reaches
Gemini Live from them on its own (its DTMF aggregator only updates the local context).
Text does: digits are collected until ``#`` or a pause (``PAUSE_SECONDS``, Twilio's own
``<Gather>`` default) and sent as one ``InputTextRawFrame``. The owner's PIN is never
passed on: while what was typed could still become the PIN, the pause is stretched to
``PIN_WAIT_SECONDS`` (a PIN typed slowly is not split into pieces that escape the mask),
and a PIN cut short is masked too.

Every audio frame of the call crosses this processor on its way in, so it runs in
pipecat's direct mode (no queue and task of its own) and never waits for anything: the
note it makes of the keys (the call's transcript) is queued, not written, on the spot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pipecat.frames.frames import Frame, InputDTMFFrame, InputTextRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

PAUSE_SECONDS = 5.0
PIN_WAIT_SECONDS = 15.0
MASK = "••••"


class KeypadToText(FrameProcessor):
    def __init__(
        self,
        note: Callable[[str], Awaitable[None]],
        secret: str | None = None,
        pause: float = PAUSE_SECONDS,
        pin_wait: float = PIN_WAIT_SECONDS,
    ):
        super().__init__(enable_direct_mode=True)
        self._note = note
        self._secret = secret
        self._pause = pause
        self._pin_wait = pin_wait
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

    def _pin_begun(self, digits: str) -> bool:
        """True if ``digits`` end with the start of the PIN (it may be on its way)."""
        secret = self._secret
        return bool(secret) and any(secret.startswith(digits[i:]) for i in range(len(digits)))  # type: ignore[union-attr]

    async def _later(self) -> None:
        await asyncio.sleep(self._pause)
        if self._pin_begun(self._digits) and self._pin_wait > self._pause:
            await asyncio.sleep(self._pin_wait - self._pause)
        await self._flush("")

    def _masked(self, digits: str) -> str:
        secret = self._secret
        if not secret:
            return digits
        digits = digits.replace(secret, MASK)
        for i in range(len(digits)):  # a PIN cut short at the end: its start is masked too
            tail = digits[i:]
            if len(tail) >= 2 and secret.startswith(tail):
                return digits[:i] + MASK
        return digits

    async def _flush(self, end: str) -> None:
        digits, self._digits = self._digits + end, ""
        if not digits:
            return
        digits = self._masked(digits[:-1]) + end if end else self._masked(digits)
        await self._note(f"pressed {digits}")
        await self.push_frame(InputTextRawFrame(f"[The caller pressed the keys: {digits}]"))
