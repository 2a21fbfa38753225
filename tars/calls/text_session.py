"""One text session: the same persona, role, tools, tool gate and planner as a phone call,
through the Gemini *text* model with function calling instead of Gemini Live.

    message in (SMS, n8n, tars send) ─► generateContent(history, tools of the role)
        ◄── functionCall parts ─► ToolGate (role, schema, planner, timeouts, recorded)
        ──► functionResponse parts ─► generateContent … until the model answers in text

A session is a ``Call`` row of kind ``text``: the transcript (``caller`` / ``assistant``
lines), every tool asked for (allowed or refused, and why), then its status and summary
when it closes. It stays open for follow-ups (each message carries the history so far)
and closes after ``texts.idle_seconds`` without a message, or when the model ends it
(``end_call``). Messages to one session are answered one at a time, in order.

The model is offered only the tools the role grants (``make_goal_call`` with the role's
playbooks), declared with their JSON Schema (``parametersJsonSchema``: the OpenAPI
``parameters`` subset has no ``additionalProperties``). What a tool needs from a live call
(keys, the outcome of a playbook, the owner's answer) is refused with a sentence: a text
session has no phone line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tars.caller import OWNER, Caller
from tars.calls import instructions
from tars.calls.gate import ToolGate
from tars.calls.recorder import CallRecorder
from tars.config.secrets import mask_text
from tars.endpoints import Endpoints
from tars.project import Project, thaw
from tars.store import pin_attempts
from tars.tools.builtins import ToolContext, ToolError, execute
from tars.tools.call import ToolCall
from tars.tools.catalog import goal_call_declaration

log = logging.getLogger("tars.texts")

#: Model rounds (tool batches) for one message before TARS answers with what it has.
MAX_ROUNDS = 8
#: Where a text came from: a text message, an n8n workflow, the command line.
CHANNELS = ("sms", "n8n", "cli")
#: Tools that need a phone line; offered on calls only.
CALL_ONLY = frozenset({"end_call", "press_digits", "record_outcome", "goto_step", "ask_owner"})
NO_ANSWER = "Sorry, I could not come up with an answer to that."
#: A PIN that is tried in a text: "PIN 1234", "my pin is 1234", or a message of 4 to 8 digits only.
PIN_TRY = re.compile(r"\bpin\b\W*(?:is\W*)?\d{3,12}(?!\d)|^\s*\d{4,8}\s*$", re.I)


@dataclass(frozen=True)
class TextSetup:
    """Who is writing, through what, and what the model is told and offered."""

    call_id: int
    caller: Caller
    channel: str
    system_instruction: str
    tools: tuple[str, ...]
    #: Tools the role may use here only once the owner's PIN is in a message (``sms.require_pin_for``).
    pin_for: tuple[str, ...] = ()


def text_tools(project: Project, role: str) -> tuple[str, ...]:
    """The role's tools that make sense without a phone line, in the role's order."""
    granted = project.roles[role].tools if role in project.roles else ()
    return tuple(t for t in granted if t in project.tools and t not in CALL_ONLY)


def text_instruction(project: Project, caller: Caller, channel: str, tools: Sequence[str]) -> str:
    """The call's instruction for the role, told that this is writing, not speaking."""
    now = instructions.local_now(project)
    base = instructions.inbound_instruction(project, caller.role, caller.name, caller.number, now, list(tools))
    medium = {
        "sms": "by text message (SMS): answer in one or two short sentences, plain text, no greeting",
        "n8n": "from an automation (an n8n workflow) acting for the owner: answer in one or two plain sentences",
        "cli": "typed on the command line: answer in one or two plain sentences",
    }[channel]
    return f"{base}\nThis is not a phone call. The conversation is {medium}."


def declarations(project: Project, names: Sequence[str], role: str) -> list[dict[str, Any]]:
    """The tools as Gemini function declarations (name, description, JSON Schema parameters)."""
    out = []
    role_def = project.roles.get(role)
    for name in names:
        tool = project.tools[name]
        description, params = tool.description or name, thaw(tool.parameters)
        if name == "make_goal_call" and role_def is not None and role_def.playbooks is not None:
            allowed = {n: project.playbooks[n] for n in role_def.playbooks if n in project.playbooks}
            description, params = goal_call_declaration(allowed)
        out.append({"name": name, "description": description, "parameters_json_schema": params or {"type": "object"}})
    return out


@dataclass
class Exchange:
    """One message and what TARS answered."""

    text: str
    answer: str
    tools: list[dict[str, Any]] = field(default_factory=list)  # {"name", "allowed", "result"}


class TextSession:
    """A conversation in writing with one person (or workflow), until it goes idle."""

    def __init__(
        self,
        project: Project,
        endpoints: Endpoints,
        database: Any,
        outbox: Any,
        setup: TextSetup,
        *,
        idle_seconds: float = 60.0,
    ):
        self.project = project
        self.endpoints = endpoints
        self.setup = setup
        self.idle_seconds = idle_seconds
        self.recorder = CallRecorder(database, setup.call_id, lambda text: mask_text(text, project.secrets))
        self.context = ToolContext(project, database, setup.caller, self, outbox, setup.call_id)
        self.pin_given = False
        self.pin_locked: str | None = None  # why the PIN cannot be taken now (a lockout)
        self.gate = ToolGate(
            project,
            setup.caller.role,
            setup.tools,
            lambda call, upstream: execute(self.context, call, upstream),
            self.recorder,
            self._pin_policy if setup.pin_for else None,
        )
        self.history: list[Any] = []
        self.exchanges: list[Exchange] = []
        self.ending = False
        self.failure: str | None = None
        self.closed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._activity = asyncio.Event()
        self._client: Any = None
        self._rounds = 0

    # ------------------------------------------------------------------ the conversation
    async def send(self, text: str) -> str:
        """Hand the model one message; return what TARS answers (after any tools it ran)."""
        async with self._lock:
            if self.closed.is_set():
                raise ToolError("this conversation has ended; start a new one")
            self._activity.set()
            text = await self._take_pin(text)
            await self.recorder.line("caller", text)
            exchange = Exchange(text, "")
            try:
                exchange.answer = await self._answer(text, exchange)
            except Exception as exc:
                log.warning("text session %s: the model could not be asked: %s", self.setup.call_id, exc)
                self.failure = f"model request failed: {type(exc).__name__}: {exc}"
                exchange.answer = "Sorry, I'm having technical trouble. Please try again in a few minutes."
            await self.recorder.line("assistant", exchange.answer)
            self.exchanges.append(exchange)
            self._activity.set()
            return exchange.answer

    async def _answer(self, text: str, exchange: Exchange) -> str:
        from google.genai import types

        self.history.append(types.Content(role="user", parts=[types.Part.from_text(text=text)]))
        said: list[str] = []
        for _ in range(MAX_ROUNDS):
            response = await self._generate()
            content = response.candidates[0].content if response.candidates else None
            if content is None or not content.parts:
                break
            self.history.append(content)
            words = "".join(p.text or "" for p in content.parts if p.text and not p.thought).strip()
            if words:
                said.append(words)
            calls = [p.function_call for p in content.parts if p.function_call is not None]
            if not calls:
                break
            batch = [self._tool_call(c) for c in calls]
            results = await self.gate.run_batch(batch)
            for call, result in zip(batch, results, strict=True):
                allowed = "refused" not in result
                exchange.tools.append({"name": call.name, "allowed": allowed, "result": result})
            self.history.append(
                types.Content(
                    role="user",
                    parts=[
                        types.Part.from_function_response(name=call.name, response=_jsonable(result))
                        for call, result in zip(batch, results, strict=True)
                    ],
                )
            )
        return " ".join(said) or NO_ANSWER

    def _tool_call(self, call: Any) -> ToolCall:
        self._rounds += 1
        args = call.args if isinstance(call.args, Mapping) else {}
        return ToolCall(call.id or f"text-{self.setup.call_id}-{self._rounds}", str(call.name or ""), dict(args))

    async def _generate(self) -> Any:
        from google import genai
        from google.genai import types

        if self._client is None:
            self._client = genai.Client(
                api_key=self.endpoints.gemini_api_key or "unset", http_options=self.endpoints.http_options()
            )
        declared = [
            types.FunctionDeclaration(**d) for d in declarations(self.project, self.setup.tools, self.setup.caller.role)
        ]
        config = types.GenerateContentConfig(
            system_instruction=self.setup.system_instruction,
            temperature=0.3,
            tools=[types.Tool(function_declarations=declared)] if declared else None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        model = str(self.project.section("model").get("text_model"))
        return await self._client.aio.models.generate_content(model=model, contents=self.history, config=config)

    # ------------------------------------------------------------------ the owner's PIN
    async def _take_pin(self, text: str) -> str:
        """A message carrying the owner's PIN unlocks ``pin_for`` tools for the session; the
        PIN itself is taken out before the model or the transcript sees it.

        Tries are counted as on calls (``tars.store.pin_attempts``, across sessions and
        processes): a wrong PIN is a failure for the sending number, and while the number
        (or everyone) is locked out even the right PIN unlocks nothing."""
        pin = self.project.owner.pin
        if not self.setup.pin_for or not pin or self.setup.caller.role != OWNER:
            return text
        number = self.setup.caller.number
        right = re.compile(rf"(?:\bpin\b[\s:]*)?(?<!\d){re.escape(pin)}(?!\d)", re.I)
        if right.search(text):
            text = " ".join(right.sub(" ", text).split())
            lockout = await self.context.database.run(lambda s: pin_attempts.locked(s, number))
            if lockout is not None:
                self.pin_locked = lockout.describe()
                await self.recorder.line("system", f"the owner's PIN was sent, but {self.pin_locked}")
            else:
                await self.context.database.run(lambda s: pin_attempts.record_success(s, number))
                self.pin_given = True
            return text
        if PIN_TRY.search(text):
            lockout = await self.context.database.run(lambda s: pin_attempts.record_failure(s, number))
            await self.recorder.line("system", "a wrong PIN was sent")
            if lockout is not None:
                self.pin_locked = lockout.describe()
                log.warning("text session %s: %s", self.setup.call_id, self.pin_locked)
            return " ".join(PIN_TRY.sub(" [a wrong PIN] ", text).split())
        return text

    def _pin_policy(self, tool: str) -> str | None:
        if tool not in self.setup.pin_for or self.pin_given:
            return None
        if not self.project.owner.pin:
            return f"{tool} by {self.setup.channel} needs the owner's PIN, and none is set (TARS_OWNER_PIN)"
        if self.pin_locked:
            return f"{tool} by {self.setup.channel} needs the owner's PIN: {self.pin_locked}"
        return (
            f"{tool} by {self.setup.channel} needs the owner's PIN ({self.setup.channel}.require_pin_for in "
            "tars.yaml): ask them to send it in their next message"
        )

    # ------------------------------------------------------------------ closing
    async def run_until_idle(self) -> None:
        """Wait for messages until none came for ``idle_seconds`` (or the model ended it), then close."""
        while not self.ending and not self.closed.is_set():
            self._activity.clear()
            try:
                await asyncio.wait_for(self._activity.wait(), self.idle_seconds)
            except TimeoutError:
                if not self._lock.locked():
                    break
        await self.close()

    async def close(self, reason: str | None = None) -> None:
        """No more messages: the row is finished with a summary (once)."""
        if self.closed.is_set():
            return
        async with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
            self._activity.set()
            if reason:
                await self.recorder.line("system", f"conversation closed: {reason}")
            await self.recorder.update(summary=self.summary())
            await self.recorder.finish("failed" if self.failure else "completed", self.failure)
            await self.recorder.flush()

    def summary(self) -> str:
        who = self.setup.caller.name or self.setup.caller.number
        if not self.exchanges:
            return f"Text conversation with {who} ({self.setup.channel}): nothing was asked."
        used = sorted({t["name"] for e in self.exchanges for t in e.tools if t["allowed"]})
        refused = sorted({t["name"] for e in self.exchanges for t in e.tools if not t["allowed"]})
        last = self.exchanges[-1]
        parts = [
            f"Text conversation with {who} ({self.setup.channel}), {len(self.exchanges)} "
            f"message{'s' * (len(self.exchanges) != 1)}.",
            f"Tools used: {', '.join(used)}." if used else "",
            f"Refused: {', '.join(refused)}." if refused else "",
            f'Last answer: "{last.answer}"',
        ]
        return " ".join(p for p in parts if p)

    # ------------------------------------------------------------------ call controls (CallControls)
    async def end_call(self, reason: str) -> None:
        self.ending = True
        self._activity.set()

    async def press_digits(self, digits: str) -> None:
        raise ToolError("there is no phone line in a text conversation")

    async def transfer_call(self, target: str, about: str, caller_name: str | None) -> dict[str, Any]:
        raise ToolError("there is no phone line to put through in a text conversation")

    async def record_outcome(self, outcome: Mapping[str, Any]) -> dict[str, Any]:
        raise ToolError("a text conversation follows no playbook")

    async def goto_step(self, step: str) -> dict[str, Any]:
        raise ToolError("a text conversation follows no playbook")

    async def ask_owner(self, question: str) -> str:
        raise ToolError("ask the person you are writing to directly")


def _jsonable(value: Any) -> dict[str, Any]:
    """A tool result as a JSON object for ``functionResponse.response``."""
    if not isinstance(value, dict):
        value = {"result": value}
    return json.loads(json.dumps(value, default=str))
