"""A text session scripted in the scenario format: the emulated text model's side.

The same ``turns`` a call scenario has (``tars.scenarios.scenario``) drive the Gemini emulator's
``generateContent`` when TARS runs a text session: a ``party: {say: …}`` turn is a message
that reaches TARS (an SMS, an n8n task, ``tars send``), and the ``model`` turns that follow
are what the model answers with — ``say`` becomes text, ``tool`` (with ``args``) a
``functionCall`` part, consecutive tools one turn of several calls. The model waits for the
results (the ``functionResponse`` turn) before it plays on, and judges each one against the
turn's ``result`` / ``refused`` / ``error`` as the Live side does (``scenario_model.judge``).

    turns:
      - party: {say: remind me at 5pm to call mum}
      - model: {tool: create_reminder, args: {text: call mum, when: 5pm}}
      - model: {say: "Done: 5pm, call mum."}

Requests that declare no functions (the after-call summary) go to ``fallback``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tars.emulators.gemini.rest import Answer, FunctionCall, RestRequest
from tars.scenarios.expectations import Check
from tars.scenarios.scenario import ModelTurn, PartyTurn, Scenario, Turn
from tars.scenarios.scenario_model import _same_words, judge


class TextScript:
    """A ``generateContent`` responder that plays one scenario's turns."""

    def __init__(self, turns: Sequence[Turn], fallback: Callable[[RestRequest], Any] | None = None):
        self.turns = list(turns)
        self.fallback = fallback
        self.cursor = 0
        self.pending: list[ModelTurn] = []  # tool calls waiting for their results
        self.checks: list[Check] = []
        self.heard: list[str] = []
        self.ignored: list[str] = []

    @classmethod
    def of(cls, scenario: Scenario, fallback: Callable[[RestRequest], Any] | None = None) -> TextScript:
        """The text model's side of a loaded scenario file (its ``turns``)."""
        return cls(scenario.turns, fallback)

    @property
    def finished(self) -> bool:
        return self.cursor >= len(self.turns) and not self.pending

    def __call__(self, request: RestRequest) -> Any:
        if not request.tools:
            return self.fallback(request) if self.fallback is not None else None
        results = request.function_responses
        if results and self.pending:
            for turn, result in zip(self.pending, results, strict=False):
                self.checks.append(judge(turn, result.get("response") or {}))
            self.pending = []
            return self._play()
        text = request.text
        self.heard.append(text)
        turn = self.turns[self.cursor] if self.cursor < len(self.turns) else None
        if isinstance(turn, PartyTurn) and turn.say is not None and _same_words(text, turn.say):
            self.cursor += 1
            return self._play()
        self.ignored.append(text)
        return Answer("")

    def _play(self) -> Answer:
        """The model turns from the cursor up to the next party turn, or a batch of tool calls."""
        said: list[str] = []
        calls: list[FunctionCall] = []
        while self.cursor < len(self.turns):
            turn = self.turns[self.cursor]
            if not isinstance(turn, ModelTurn) or (calls and turn.tool is None):
                break
            self.cursor += 1
            if turn.tool is not None:
                calls.append(FunctionCall(turn.tool, dict(turn.args)))
                self.pending.append(turn)
            elif turn.say is not None:
                said.append(turn.say)
        return Answer(" ".join(said), tuple(calls))
