"""A caller turn that was heard but never answered: the model has stalled.

Live models sometimes go quiet after a turn with no error and no close: "3.1 halts audio
generation when it emits the toolCall and never resumes speech ... no error event, no
socket close, just silence until the caller gives up" (PatterAI/Patter#210); "the bot goes
silent until something else triggers a new turn" (pipecat#5823). So once the caller's
words are in the transcript, the model has ``stall_seconds`` (``model.stall_seconds``) to
start answering: its reply audio counts as an answer under way, and so does a BLOCKING tool
call it waits on (a NON_BLOCKING one lets it talk meanwhile, so the caller is still owed an
answer). If nothing comes:

1. the model is nudged once with the caller's words;
2. if the nudge goes unanswered too, the session is reconnected: what is reported to cure a
   silent session is a fresh connection (https://github.com/sonichi/sutando/pull/977). It
   is resumed with its latest resumable handle, or replaced by a new session told the call so
   far, and the caller's words go to it (``GatedGeminiLive.reconnect_stalled``). Not while a
   tool call is unanswered (only the session that made it takes its result): then the call
   ends with the apology at once;
3. if the reconnected session does not answer either (or the reconnect fails), the caller
   hears an apology and the call ends, recorded as failed with the reason.

Once per call: a call whose session stalled again after a reconnect has a model (or a
service) in trouble, and every round costs the caller two ``stall_seconds`` of silence, so a
second stall ends the call after its nudge. Each step is a line of the call's transcript;
an answer after the reconnect is recorded as "the model stalled; the session was reconnected".
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
        give_up: Callable[[str, str | None], Awaitable[None]],
        recover: Callable[[str, float], Awaitable[str | None]] | None = None,
        recovered: Callable[[], Awaitable[None]] | None = None,
        after_seconds: float = STALL_SECONDS,
        tick: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.lines = lines
        self.busy = busy  # the model is speaking, or waits on a tool, or reconnects: an answer is under way
        self.replies = replies  # how many replies the model has begun (TurnClock.replies)
        self.nudge = nudge
        self.give_up = give_up  # (the words, why the session was not reconnected; None: it was)
        self.recover = recover  # reconnect the session; None when under way, else why not
        self.recovered = recovered  # the reconnected session answered
        self.after_seconds = after_seconds
        self.tick = tick
        self.clock = clock
        self.nudged = False
        self.reconnected = False  # the one reconnect of this call has been made
        self._unconfirmed = False  # reconnected, and the new session has not answered yet

    async def run(self) -> None:
        seen = len(self.lines)
        waiting: str | None = None  # the caller's words not answered yet
        since = heard_at = self.clock()
        replies = self.replies()
        while True:
            await asyncio.sleep(self.tick)
            now = self.clock()
            answered = False
            for speaker, text in self.lines[seen:]:
                if speaker == "caller":
                    waiting, since, heard_at, replies = text, now, now, self.replies()
                elif speaker == "assistant":
                    waiting, answered = None, True
            seen = len(self.lines)
            if self.replies() != replies:  # the model began to speak: answered
                waiting, answered, replies = None, True, self.replies()
            if answered:
                await self._answered()
            if waiting is None:
                continue
            if self.busy():
                since = now
                continue
            if now - since < self.after_seconds:
                continue
            if not self.nudged:
                self.nudged, since = True, now
                await self.nudge(waiting)
                continue
            if self.reconnected or self.recover is None:
                await self.give_up(waiting, None if self._unconfirmed else "the session was reconnected once already")
                return
            self.reconnected = True
            why = await self.recover(waiting, heard_at)
            if why is not None:
                await self.give_up(waiting, why)
                return
            self._unconfirmed, since = True, self.clock()

    async def _answered(self) -> None:
        self.nudged = False
        if self._unconfirmed:
            self._unconfirmed = False
            if self.recovered is not None:
                await self.recovered()


class WatchedCall(Protocol):
    """What the watchdog needs of a call (``CallSession``)."""

    @property
    def recorder(self) -> Any: ...

    @property
    def clock(self) -> Any: ...

    def model_busy(self) -> bool: ...

    async def say_to_model(self, text: str) -> None: ...

    def model_cannot_reconnect(self) -> str | None: ...

    async def reconnect_model(self, words: str, heard_at: float) -> str | None: ...

    async def model_failed(self, reason: str) -> None: ...


STOPPED = "the model stopped answering: a caller turn went unanswered, even after a nudge"


def for_call(call: WatchedCall, model: Mapping[str, Any]) -> AnswerWatchdog:
    """The watchdog of one call, with ``model.stall_seconds`` from the project's ``model`` section."""

    async def nudge(words: str) -> None:
        await call.recorder.line("system", "the model did not answer the caller; it is nudged once")
        await call.say_to_model(nudge_text(words))

    async def recover(words: str, heard_at: float) -> str | None:
        why = call.model_cannot_reconnect()
        if why is not None:
            return why
        await call.recorder.line("system", "the model did not answer the nudge either; its session is reconnected")
        return await call.reconnect_model(words, heard_at)

    async def recovered() -> None:
        await call.recorder.line("system", "the model stalled; the session was reconnected")

    async def give_up(words: str, why: str | None) -> None:
        if why is None:  # reconnected, and still nothing
            await call.recorder.line(
                "system", "the reconnected model session did not answer either; the call ends with an apology"
            )
            await call.model_failed(f"{STOPPED} and a reconnect")
            return
        await call.recorder.line(
            "system",
            f"the model did not answer the nudge either, and its session is not reconnected ({why}); "
            "the call ends with an apology",
        )
        await call.model_failed(f"{STOPPED}; the session was not reconnected: {why}")

    return AnswerWatchdog(
        call.recorder.lines,
        busy=call.model_busy,
        replies=lambda: call.clock.replies,
        nudge=nudge,
        give_up=give_up,
        recover=recover,
        recovered=recovered,
        after_seconds=float(model.get("stall_seconds", STALL_SECONDS)),
    )
