"""The emulated model's "brain": what the fake Gemini Live says and which tools it calls.

The wire layer (``live``) turns what a brain returns into real Live API
frames; a brain only decides *what* happens, never *how* it is framed. A brain
is asked at three moments and answers with a list of actions for the model's
next turn:

* ``on_start(session)``: the client completed its first ``client_content``
  turn (pipecat's seed with ``turnComplete: true``). Typically a greeting.
* ``on_user(session, text)``: the caller finished an utterance (decoded from the
  synthetic speech in the audio) or sent ``realtime_input.text`` (for example
  ``"DTMF: 5"`` or a runtime announcement), or appended a user turn through
  ``client_content``.
* ``on_tool_result(session, name, response)``: the client answered a
  ``toolCall`` the brain asked for; the model's turn continues with the actions
  returned here.

Actions: ``Say(text)`` (audio + output transcription), ``CallTool(name, args)``
(consecutive calls are sent together in one ``toolCall`` frame; the turn waits
for every matching ``tool_response``), ``Wait(ms)`` (a pause inside the turn),
``EndTurn()`` (close the turn now; later actions start a new turn), ``Stall(lasting)``
(the model goes quiet: see ``Stall``). A turn is closed automatically after the last
action. To "hang up", the model calls the client's hang-up tool like the real one would.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias


@dataclass(frozen=True)
class Say:
    """Speak ``text``: synthetic speech audio, then its output transcription."""

    text: str


@dataclass(frozen=True)
class CallTool:
    """Call the client's function ``name`` with ``args`` and wait for the result.

    ``args`` that is not a mapping (a string, a list) is sent as it is: models do emit
    malformed calls, and a client has to survive them."""

    name: str
    args: Any = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """Pause inside the turn (model "thinking"), without audio."""

    ms: int


@dataclass(frozen=True)
class Search:
    """Answer ``text`` from a Google Search for ``queries`` that found ``sources`` (uri,
    title): the grounding metadata the service sends with a searched answer, then the
    answer spoken. Only for a session whose setup offers ``googleSearch``."""

    queries: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    text: str


@dataclass(frozen=True)
class EndTurn:
    """Close the current turn (``generationComplete`` + ``turnComplete``) now."""


#: How long a ``Stall`` lasts: what a reconnect can cure, and what it cannot.
STALL_SCOPES = ("connection", "session", "service")


@dataclass(frozen=True)
class Stall:
    """The model goes quiet: it hears everything from now on and answers nothing, with no
    error and no close. Live models do this: "no error event, no socket close, just silence
    until the caller gives up" (PatterAI/Patter#210); "the bot goes silent until something
    else triggers a new turn" (pipecat-ai/pipecat#5823). ``lasting`` says what cures it:

    * ``connection``: the stall belongs to this websocket; a new connection (the session
      resumed, or a new session) answers again. "A Gemini Live session can silently stall
      ... with no transport-close event"; a forced reconnect cured it
      (https://github.com/sonichi/sutando/pull/977);
    * ``session``: the model conversation is wedged, and resuming it restores the wedge ("wedges
      model into zero-audio state for remainder of session",
      https://github.com/googleapis/python-genai/issues/2333); a new session answers;
    * ``service``: every connection and every session from now on stays quiet (a stall
      on the service's side, "serverContent just stops arriving for anywhere from several
      seconds to multiple minutes", https://github.com/google-gemini/cookbook/issues/1225).

    Actions after it in the same answer are not played. What goes unanswered is kept in
    ``LiveSession.unanswered`` (with the connection it was heard on)."""

    lasting: str = "connection"

    def __post_init__(self) -> None:
        if self.lasting not in STALL_SCOPES:
            raise ValueError(f"Stall lasting {self.lasting!r}: one of {', '.join(STALL_SCOPES)}")


Action: TypeAlias = Say | CallTool | Wait | EndTurn | Search | Stall


class Conversation(Protocol):
    """What a brain is shown of the conversation it speaks in.

    ``session.LiveSession`` is the one there is; it holds its brain, so this module names
    it by the parts a brain reads rather than importing it (the import would run in a circle).
    """

    id: str
    setup: dict[str, Any]
    history: list[dict[str, str]]  # client_content turns
    transcript: list[tuple[str, str]]  # (user|model, text)
    state: dict[str, Any]  # free scratch space for brains

    @property
    def system_instruction(self) -> str: ...

    @property
    def tools(self) -> dict[str, dict[str, Any]]: ...


class Brain(Protocol):
    """Decides the emulated model's turns. Methods may be sync or async."""

    async def on_start(self, session: Conversation) -> list[Action]: ...

    async def on_user(self, session: Conversation, text: str) -> list[Action]: ...

    async def on_tool_result(self, session: Conversation, name: str, response: dict[str, Any]) -> list[Action]: ...


async def ask(result: Any) -> list[Action]:
    """Await a brain answer if it is awaitable; accept a single action or None."""
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return []
    if isinstance(result, Say | CallTool | Wait | EndTurn | Search | Stall):
        return [result]
    return list(result)


class EchoBrain:
    """Greets, then repeats what it heard. Tool results are acknowledged briefly."""

    greeting = "Hello, this is the emulator."

    async def on_start(self, session: Conversation) -> list[Action]:
        return [Say(self.greeting)]

    async def on_user(self, session: Conversation, text: str) -> list[Action]:
        return [Say(f"You said: {text}")] if text.strip() else []

    async def on_tool_result(self, session: Conversation, name: str, response: dict[str, Any]) -> list[Action]:
        return [Say(f"{name} is done.")]


@dataclass(frozen=True)
class Event:
    """What a scripted brain was asked: ``kind`` is start, user or tool_result."""

    kind: str
    text: str = ""
    name: str = ""
    response: dict[str, Any] | None = None


StepFn: TypeAlias = Callable[[Conversation, Event], Any]
Step: TypeAlias = Action | Sequence[Action] | StepFn


class ScriptedBrain:
    """Plays a fixed list of model turns in order, one per brain call.

    Each step is an action, a list of actions, or a callable
    ``(session, event) -> actions`` (sync or async) for steps that depend on
    what was heard. Every call (start, user utterance/text, tool result)
    consumes the next step; once the script is exhausted the model stays
    silent. ``events`` records every call, in order, for assertions.
    """

    def __init__(self, steps: Sequence[Step]):
        self.steps: list[Step] = list(steps)
        self.events: list[Event] = []
        self.position = 0

    @property
    def done(self) -> bool:
        return self.position >= len(self.steps)

    async def _next(self, session: Conversation, event: Event) -> list[Action]:
        self.events.append(event)
        if self.done:
            return []
        step = self.steps[self.position]
        self.position += 1
        if callable(step) and not isinstance(step, Say | CallTool | Wait | EndTurn | Search | Stall):
            return await ask(step(session, event))
        return await ask(step)

    async def on_start(self, session: Conversation) -> list[Action]:
        return await self._next(session, Event("start"))

    async def on_user(self, session: Conversation, text: str) -> list[Action]:
        return await self._next(session, Event("user", text=text))

    async def on_tool_result(self, session: Conversation, name: str, response: dict[str, Any]) -> list[Action]:
        return await self._next(session, Event("tool_result", name=name, response=response))


BrainFactory: TypeAlias = Callable[[], Brain]
