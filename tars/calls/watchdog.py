"""A caller turn that was heard but never answered: the model has stalled.

Live models sometimes go quiet after a turn with no error and no close: "3.1 halts audio
generation when it emits the toolCall and never resumes speech ... no error event, no
socket close, just silence until the caller gives up" (PatterAI/Patter#210); "the bot goes
silent until something else triggers a new turn" (pipecat#5823). So once the caller's
words are in the transcript, the model has ``stall_seconds`` (``model.stall_seconds``) to
start answering: its reply audio, or a tool call it makes, counts as an answer under way.
If nothing comes, the model is nudged once with the caller's words; if the nudge goes
unanswered too, the caller hears an apology and the call ends (recorded as failed, with
the reason). Each step is a line of the call's transcript.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

#: The default wait for an answer (``model.stall_seconds``): Live replies start within a second
#: or two, so ten seconds of nothing after the caller's turn is a stall, not a pause.
STALL_SECONDS = 10.0


def nudge_text(words: str) -> str:
    """What the model is told when it has not answered the caller."""
    return f'[System] The caller said "{words}" and is still waiting for your answer. Answer them now.'


class AnswerWatchdog:
    """Watches one call's transcript (``lines``, as the recorder keeps them) for an unanswered caller turn."""

    def __init__(
        self,
        lines: Sequence[tuple[str, str]],
        *,
        busy: Callable[[], bool],
        replies: Callable[[], int],
        nudge: Callable[[str], Awaitable[None]],
        give_up: Callable[[str], Awaitable[None]],
        after_seconds: float = STALL_SECONDS,
        tick: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.lines = lines
        self.busy = busy  # the model is speaking, or a tool it called runs: an answer is under way
        self.replies = replies  # how many replies the model has begun (TurnClock.replies)
        self.nudge = nudge
        self.give_up = give_up
        self.after_seconds = after_seconds
        self.tick = tick
        self.clock = clock
        self.nudged = False

    async def run(self) -> None:
        seen = len(self.lines)
        waiting: str | None = None  # the caller's words not answered yet
        since = self.clock()
        replies = self.replies()
        while True:
            await asyncio.sleep(self.tick)
            now = self.clock()
            for speaker, text in self.lines[seen:]:
                if speaker == "caller":
                    waiting, since, replies = text, now, self.replies()
                elif speaker == "assistant":
                    waiting, self.nudged = None, False
            seen = len(self.lines)
            if self.replies() != replies:  # the model began to speak: answered
                waiting, self.nudged, replies = None, False, self.replies()
            if waiting is None:
                continue
            if self.busy():
                since = now
                continue
            if now - since < self.after_seconds:
                continue
            if self.nudged:
                await self.give_up(waiting)
                return
            self.nudged, since = True, now
            await self.nudge(waiting)


class WatchedCall(Protocol):
    """What the watchdog needs of a call (``CallSession``)."""

    @property
    def recorder(self) -> Any: ...

    @property
    def clock(self) -> Any: ...

    def tools_running(self) -> bool: ...

    async def say_to_model(self, text: str) -> None: ...

    async def model_failed(self, reason: str) -> None: ...


def for_call(call: WatchedCall, model: Mapping[str, Any]) -> AnswerWatchdog:
    """The watchdog of one call, with ``model.stall_seconds`` from the project's ``model`` section."""

    async def nudge(words: str) -> None:
        await call.recorder.line("system", "the model did not answer the caller; it is nudged once")
        await call.say_to_model(nudge_text(words))

    async def give_up(words: str) -> None:
        await call.recorder.line("system", "the model did not answer the nudge either; the call ends with an apology")
        await call.model_failed("the model stopped answering: a caller turn went unanswered, even after a nudge")

    return AnswerWatchdog(
        call.recorder.lines,
        busy=lambda: call.clock.replying or call.tools_running(),
        replies=lambda: call.clock.replies,
        nudge=nudge,
        give_up=give_up,
        after_seconds=float(model.get("stall_seconds", STALL_SECONDS)),
    )
