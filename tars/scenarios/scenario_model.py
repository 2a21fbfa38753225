"""The emulated model's side of a scenario: a Gemini brain that walks the script's turns.

The model is asked to act at three moments (see ``brain``): when the call starts,
when it hears something, and when a tool result comes back. Each time, it plays the
script's model turns from where it stands up to the next party turn (or a tool call,
whose result it waits for). It moves past a party's ``say`` only once it has heard those
exact words through the real audio path; after a ``press`` or ``silence`` (which it is
not told about) its next turns wait for whatever it hears next, such as a prompt TARS
sends it. Every tool result is judged against the turn's ``result``/``refused``/``error``.

The party side (``runner``) asks ``reached(i)`` before each party turn, so the party
never talks over the model, and ``finished`` at the end. An owner's text (``owner:``)
answers the ``ask_owner`` call just before it: the runner sends it once
``awaiting_owner(i)``, and the model goes on when the tool's result comes back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tars.emulators.gemini.brain import Action, CallTool, Say, Stall
from tars.emulators.gemini.session import LiveSession
from tars.scenarios.expectations import Check, describe_value, mismatch
from tars.scenarios.scenario import ModelTurn, OwnerTurn, PartyTurn, Turn

GREETING = re.compile(r'Greet the caller now with: "(?P<words>.*)"\]', re.DOTALL)


def greeting_in(history: Sequence[Mapping[str, str]]) -> str | None:
    """The words TARS asked the model to greet with (its first user turn), if it did."""
    for turn in history:
        found = GREETING.search(turn.get("text", ""))
        if found:
            return found["words"]
    return None


class ScenarioModel:
    """A ``Brain`` for the Gemini emulator that follows one scenario's turns."""

    def __init__(self, turns: Sequence[Turn]):
        self.turns = list(turns)
        self.cursor = 0  # the next turn to play or wait for
        self.pending: ModelTurn | None = None  # a tool call waiting for its result
        self.checks: list[Check] = []
        self.heard: list[str] = []  # everything the model heard, in order
        self.ignored: list[str] = []  # heard while waiting for other words (or nothing)
        self.greeting: str | None = None
        self.session: LiveSession | None = None
        self.spoken = 0  # Says handed to the emulator
        self.last_words_at: float | None = None  # when the latest Say was handed over
        self._cue_needed = False  # after press/silence: the next thing heard starts the model
        self.stalled = 0  # things the model will still hear and leave unanswered (a stall turn)

    # --- what the party side asks
    def reached(self, index: int) -> bool:
        """Every model turn before ``index`` has been played and its words are on the wire."""
        return self.cursor >= index and self.pending is None and self._words_sent()

    @property
    def finished(self) -> bool:
        return self.cursor >= len(self.turns) and self.pending is None and self._words_sent()

    def party_acted(self, index: int) -> None:
        """The party did ``turns[index]`` (not speech: the model is not told)."""
        if self.cursor == index:
            self.cursor += 1
            self._cue_needed = True

    def awaiting_owner(self, index: int) -> bool:
        """The model has asked the owner (``ask_owner`` is waiting) and ``turns[index]`` is the reply."""
        return self.cursor == index and self.pending is not None and self.pending.tool == "ask_owner"

    def owner_acted(self, index: int) -> None:
        """The owner's reply is on its way: the model goes on past it when ask_owner returns."""
        if self.cursor == index:
            self.cursor += 1

    def waiting_for(self) -> str:
        """What the model is waiting for, in words (for a stuck scenario's report)."""
        if self.pending is not None:
            return f"the result of {self.pending.tool} (turn {self.pending.number})"
        if self.cursor >= len(self.turns):
            return "nothing: the script is done"
        turn = self.turns[self.cursor]
        if isinstance(turn, PartyTurn) and turn.say is not None:
            return f"to hear the party say {turn.say!r} (turn {turn.number})"
        if isinstance(turn, PartyTurn):
            return f"the party to act (turn {turn.number}: {turn.describe()})"
        if isinstance(turn, OwnerTurn):
            return f"the model to ask the owner before turn {turn.number} ({turn.describe()})"
        return f"something to hear before turn {turn.number} ({turn.describe()})"

    def _words_sent(self) -> bool:
        if self.spoken == 0:
            return True
        said = sum(1 for role, _ in self.session.transcript if role == "model") if self.session else 0
        return said >= self.spoken

    # --- the Brain protocol
    async def on_start(self, session: LiveSession) -> list[Action]:
        self.session = session
        # A new session taking over a stalled one has no greeting words; its seed is its cue.
        self.greeting = greeting_in(session.history) or self.greeting
        return self._play()

    async def on_user(self, session: LiveSession, text: str) -> list[Action]:
        self.session = session
        self.heard.append(text)
        if self.stalled:  # a stall: heard, and left unanswered
            self.stalled -= 1
            self.ignored.append(text)
            return []
        turn = self.turns[self.cursor] if self.cursor < len(self.turns) else None
        if self.pending is None and isinstance(turn, PartyTurn) and turn.say is not None:
            if _same_words(text, turn.say):
                self.cursor += 1
                return self._play()
        elif self.pending is None and isinstance(turn, ModelTurn) and self._cue_needed:
            return self._play()
        self.ignored.append(text)
        return []

    async def on_tool_result(self, session: LiveSession, name: str, response: dict[str, Any]) -> list[Action]:
        turn, self.pending = self.pending, None
        if turn is not None:
            self.checks.append(judge(turn, response))
        return self._play()

    def _play(self) -> list[Action]:
        """The model's turns from the cursor up to the next party turn or tool call."""
        self._cue_needed = False
        actions: list[Action] = []
        while self.cursor < len(self.turns):
            turn = self.turns[self.cursor]
            if not isinstance(turn, ModelTurn):
                break
            self.cursor += 1
            if turn.greet:
                if self.greeting is None:
                    self.checks.append(
                        Check(
                            f"turn {turn.number}: greet",
                            False,
                            "TARS did not ask the model to greet anyone (no greeting words in its first message)",
                        )
                    )
                actions.append(Say(self.greeting or "Hello."))
            elif turn.say is not None:
                actions.append(Say(turn.say))
            elif turn.tool is not None:
                actions.append(CallTool(turn.tool, dict(turn.args)))
                self.pending = turn
                break
            elif isinstance(turn.stall, str):  # quiet on the connection, session or service
                actions.append(Stall(turn.stall))
                self._cue_needed = True
                break
            elif turn.stall:  # silent now, and for the next stall - 1 things heard
                self.stalled = turn.stall - 1
                self._cue_needed = True
                break
        says = sum(1 for a in actions if isinstance(a, Say))
        if says:
            self.spoken += says
            self.last_words_at = time.monotonic()
        return actions


def _same_words(heard: str, said: str) -> bool:
    return " ".join(heard.split()).casefold() == " ".join(said.split()).casefold()


def judge(turn: ModelTurn, response: Mapping[str, Any]) -> Check:
    """Did the tool call come back as the turn expects (by default: allowed and succeeded)?"""
    what = f"turn {turn.number}: {turn.tool}"
    refused, error = response.get("refused"), response.get("error")
    if turn.refused:
        if refused:
            return Check(f"{what} refused", True, str(refused))
        return Check(f"{what} refused", False, f"the gate let it run; it returned {describe_value(response)}")
    if refused:
        return Check(what, False, f"refused: {refused}")
    if turn.error is not None:
        if error and turn.error.casefold() in str(error).casefold():
            return Check(f"{what} fails", True, str(error))
        got = f"failed with {error!r}" if error else f"succeeded with {describe_value(response)}"
        return Check(f"{what} fails with {turn.error!r}", False, got)
    if error:
        return Check(what, False, f"failed: {error}")
    if turn.result is not None:
        problem = mismatch(turn.result, response)
        if problem:
            return Check(f"{what} result", False, f"{problem}; the result was {describe_value(response)}")
        return Check(f"{what} result", True, describe_value(turn.result))
    return Check(what, True, "ran")
