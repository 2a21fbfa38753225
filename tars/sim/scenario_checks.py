"""Scenario checks the schema cannot make: names in the project, turns that cannot happen.

Run after the JSON Schema pass (``load_scenario``), so every value has the right shape;
each problem points at the YAML that causes it, with the nearest valid name when there
is one. ``comma_traps`` runs before the schema: ``{say: Thanks, bye!}`` is valid YAML
for something else, and deserves a sentence of its own.
"""

from __future__ import annotations

import datetime as dt

from tars.config.diagnostics import Diagnostic, JsonPath, suggestion
from tars.config.yaml_loader import Document
from tars.project import Project
from tars.sim.scenario import E164, OWNER, TIME_KEY, TOOL_ONLY, UNKNOWN

#: Tools a goal call offers besides the playbook's (see tars.calls.playbook_run.RUNTIME_TOOLS).
GOAL_RUNTIME_TOOLS = ("goto_step",)
#: Expectations only a goal call can meet.
GOAL_EXPECTATIONS = ("outcome", "outcome_source", "summary", "steps_visited", "report", "retry_scheduled")
END = "end"


def comma_traps(doc: Document) -> list[Diagnostic]:
    """``{say: Thanks, bye!}`` is YAML for ``{say: Thanks, "bye!": null}``: say so plainly."""
    problems = []
    turns = doc.data.get("turns") if isinstance(doc.data, dict) else None
    for i, item in enumerate(turns if isinstance(turns, list) else []):
        for side, turn in item.items() if isinstance(item, dict) else []:
            said = next((k for k in ("say", "texts") if isinstance(turn, dict) and isinstance(turn.get(k), str)), None)
            if said is None:
                continue
            extra = [k for k, v in turn.items() if v is None and k not in ("say", "texts", "greet", "tool", "press")]
            if extra:
                words = ", ".join([turn[said], *extra])
                problems.append(
                    doc.diagnostic(
                        ("turns", i, side),
                        f'a comma ends the words in {{{said}: ...}}: put them in quotes, {said}: "{words}"',
                        code="scenario.comma",
                    )
                )
    return problems


class _Checker:
    """Pass 3: what the schema cannot know: names in the project, turns that cannot happen."""

    def __init__(self, doc: Document, project: Project):
        self.doc = doc
        self.project = project
        self.data = doc.data
        self.problems: list[Diagnostic] = []
        given = self.data.get("given") or {}
        self.contacts = [c["name"] for c in given.get("contacts") or []]
        self.inbound = self.data["call"].get("direction", "inbound") == "inbound"
        self.forged: set[str] = set()  # made-up tool names the scenario expects to be refused
        self.playbook = None if self.inbound else self.project.playbooks.get(self.data["call"].get("playbook", ""))
        self.tools = [*self.project.tools] + ([] if self.inbound else list(GOAL_RUNTIME_TOOLS))

    def error(self, path: JsonPath, message: str, *, key: bool = False, code: str = "scenario") -> None:
        self.problems.append(self.doc.diagnostic(path, message, key=key, code=code))

    def run(self) -> list[Diagnostic]:
        self.call()
        self.given()
        self.turns()
        self.expect()
        self.times(self.data, ())
        return self.problems

    def times(self, value: object, path: JsonPath) -> None:
        """Each ``{$time: words}`` holds words for a time to come, and nothing else."""
        if isinstance(value, dict):
            if TIME_KEY in value:
                words = value[TIME_KEY]
                if len(value) > 1:
                    other = next(k for k in value if k != TIME_KEY)
                    self.error(
                        (*path, other), f"'{TIME_KEY}' stands alone: a time in words, nothing beside it", key=True
                    )
                elif not isinstance(words, str):
                    self.error(
                        (*path, TIME_KEY), f"'{TIME_KEY}' takes a time in words, e.g. {{{TIME_KEY}: Wednesday at 10am}}"
                    )
                else:
                    self.time_words((*path, TIME_KEY), words, future=True)
                return
            for key, item in value.items():
                self.times(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.times(item, (*path, index))

    # --- who is on the line
    def who(self, path: JsonPath, value: str, *, allow_unknown: bool) -> None:
        keywords = [OWNER, UNKNOWN] if allow_unknown else [OWNER]
        if value in keywords or value in self.contacts or E164.match(value):
            return
        hint = suggestion(value, [*keywords, *self.contacts])
        names = ", ".join(repr(c) for c in self.contacts) or "none are given"
        self.error(
            path,
            f"'{value}' is not {' or '.join(keywords)}, an E.164 number, or a contact from "
            f"given.contacts ({names}){hint}",
        )

    def call(self) -> None:
        call = self.data["call"]
        inbound_keys, outbound_keys = ("from", "keypad"), ("playbook", "target", "inputs", "answer")
        wrong = outbound_keys if self.inbound else inbound_keys
        for key in wrong:
            if key in call:
                kind = "outbound" if self.inbound else "inbound"
                self.error(
                    ("call", key),
                    f"'{key}' is for {kind} calls; this call is {'inbound' if self.inbound else 'outbound'}",
                    key=True,
                )
        if self.inbound:
            if "from" not in call:
                self.error(
                    ("call",),
                    "an inbound call needs 'from': owner, unknown, a contact's name or an E.164 number",
                    code="scenario.required",
                )
            else:
                self.who(("call", "from"), call["from"], allow_unknown=True)
            return
        for key in ("playbook", "target"):
            if key not in call:
                self.error(("call",), f"an outbound call needs '{key}'", code="scenario.required")
        playbook = self.project.playbooks.get(call.get("playbook", ""))
        if "playbook" in call and playbook is None:
            self.error(
                ("call", "playbook"),
                f"'{call['playbook']}' is not a playbook"
                + (
                    suggestion(call["playbook"], self.project.playbooks)
                    or f"; playbooks: {', '.join(self.project.playbooks) or 'none'}"
                ),
            )
        if "target" in call:
            target = call["target"]
            if not (target in self.project.directory or target in self.contacts or E164.match(target)):
                self.error(
                    ("call", "target"),
                    f"'{target}' is not a directory entry, a contact from "
                    "given.contacts, or an E.164 number"
                    + suggestion(target, [*self.project.directory, *self.contacts]),
                )
        answer = call.get("answer", "human")
        if answer == "human" and not self.data.get("turns"):
            self.error(
                ("call",),
                "a goal call answered by a person needs 'turns' (what each side says)",
                code="scenario.required",
            )
        elif answer != "human" and "turns" in self.data:
            self.error(
                ("turns",),
                f"nobody talks on a call answered '{answer}': drop 'turns', or answer: human",
                key=True,
            )
        if playbook is not None:
            inputs = call.get("inputs") or {}
            for name in inputs:
                if name not in playbook.inputs:
                    self.error(
                        ("call", "inputs", name),
                        f"'{name}' is not an input of playbook '{playbook.name}'" + suggestion(name, playbook.inputs),
                        key=True,
                    )
            for name, spec in playbook.inputs.items():
                if spec.required and name not in inputs:
                    self.error(
                        ("call", "inputs"),
                        f"playbook '{playbook.name}' needs the input '{name}'",
                        code="scenario.required",
                    )

    def phones(self, given: dict[str, object]) -> None:
        """``given.phones`` keys name someone TARS could ring; a greeting is for a voicemail."""
        phones = given.get("phones") or {}
        assert isinstance(phones, dict)
        names = [OWNER, *self.contacts, *self.project.directory]
        for who, spec in phones.items():
            if not (who in names or E164.match(who)):
                self.error(
                    ("given", "phones", who),
                    f"'{who}' is not owner, a contact from given.contacts, a directory entry, or an E.164 number"
                    + suggestion(who, names),
                    key=True,
                )
            if "greeting" in spec and spec.get("answers", "human") != "voicemail":
                self.error(("given", "phones", who, "greeting"), "a greeting is for answers: voicemail", key=True)

    def given(self) -> None:
        given = self.data.get("given") or {}
        self.phones(given)
        seen: dict[str, int] = {}
        roles = [*self.project.roles, "blocked"]
        for i, contact in enumerate(given.get("contacts") or []):
            name = contact["name"]
            if name.casefold() in seen:
                self.error(
                    ("given", "contacts", i, "name"),
                    f"'{name}' is already given as contact {seen[name.casefold()] + 1}",
                )
            seen.setdefault(name.casefold(), i)
            role = contact.get("role")
            if role is not None and role not in roles:
                self.error(
                    ("given", "contacts", i, "role"),
                    f"'{role}' is not a role in tars.yaml"
                    + (suggestion(role, roles) or f"; roles: {', '.join(roles)}"),
                )
        for i, reminder in enumerate(given.get("reminders") or []):
            self.time_words(("given", "reminders", i, "when"), reminder["when"], future=True)
            if reminder.get("every"):
                self.repeat_words(("given", "reminders", i, "every"), reminder["every"])
        if "text_model" in given and self.inbound:
            self.error(("given", "text_model"), "'text_model' is for goal calls (direction: outbound)", key=True)
        hooks = self.webhook_names()
        for name in given.get("webhooks") or {}:
            if name not in hooks:
                self.error(("given", "webhooks", name), self.not_a_webhook(name), key=True)

    def webhook_names(self) -> list[str]:
        return [n for n, t in self.project.tools.items() if t.webhook is not None] + ["delivery"]

    def not_a_webhook(self, name: str) -> str:
        names = self.webhook_names()
        return f"'{name}' is not a webhook tool or 'delivery'" + (
            suggestion(name, names) or f"; webhooks: {', '.join(names)}"
        )

    def time_words(self, path: JsonPath, words: str, *, future: bool = False) -> None:
        from tars import timeparse

        parse = timeparse.parse_future if future else timeparse.parse_time
        try:
            parse(words, self.project.owner.timezone, dt.datetime.now(dt.UTC))
        except timeparse.TimeParseError as exc:
            self.error(path, str(exc))

    def repeat_words(self, path: JsonPath, words: str) -> None:
        from tars import timeparse

        try:
            timeparse.parse_repeat(words, self.project.owner.timezone)
        except Exception as exc:  # TimeParseError or InvalidValue: both say what is wrong
            self.error(path, str(exc))

    # --- the conversation
    def turns(self) -> None:
        hung_up: int | None = None  # the turn number where the party hung up
        ended: int | None = None  # the turn number of the model's end_call
        turns = self.data.get("turns") or []
        if self.inbound and not turns:
            self.error((), "an inbound call needs 'turns' (what each side says)", code="scenario.required")
        for i, item in enumerate(turns):
            if "owner" in item:
                before = turns[i - 1].get("model", {}) if i > 0 else {}
                if self.inbound:
                    self.error(("turns", i, "owner"), "the owner answers questions on goal calls (direction: outbound)")
                elif before.get("tool") != "ask_owner" or before.get("refused") or "error" in before:
                    self.error(
                        ("turns", i, "owner"),
                        "the owner texts an answer to the model's question: put this turn right after "
                        "a `model: {tool: ask_owner, …}` turn",
                    )
                continue
            if "party" in item:
                if hung_up or ended:
                    why = f"hanging up at turn {hung_up}" if hung_up else f"the model's end_call at turn {ended}"
                    self.error(("turns", i, "party"), f"the party cannot act after {why}; the call is over")
                if item["party"].get("hang_up"):
                    hung_up = hung_up or i + 1
                continue
            turn = item["model"]
            path: JsonPath = ("turns", i, "model")
            if hung_up:
                self.error(path, f"the model cannot act after the party hung up at turn {hung_up}")
            actions = [k for k in ("say", "greet", "tool") if k in turn]
            if len(actions) != 1:
                what = " and ".join(f"'{a}'" for a in actions) if actions else "nothing"
                self.error(path, f"a model turn does one thing (say, greet or tool); this one does {what}")
            if "tool" not in turn:
                for key in TOOL_ONLY:
                    if key in turn:
                        self.error((*path, key), f"'{key}' goes with 'tool' (a tool call)", key=True)
            outcomes = [k for k in ("result", "refused", "error") if k in turn]
            if len(outcomes) > 1:
                self.error(
                    (*path, outcomes[1]),
                    f"'{outcomes[0]}' and '{outcomes[1]}' cannot both be expected of one tool call",
                    key=True,
                )
            if turn.get("greet") and not self.inbound:
                self.error((*path, "greet"), "'greet' is for inbound calls (TARS greets whoever rings it)", key=True)
            tool = turn.get("tool")
            if tool is None:
                continue
            if tool == "goto_step" and not self.inbound:
                self.step_argument((*path, "args", "step"), (turn.get("args") or {}).get("step"), turn)
            if tool not in self.tools:
                if turn.get("refused"):
                    self.forged.add(tool)
                else:
                    self.error(
                        (*path, "tool"),
                        f"'{tool}' is not a tool of this project"
                        + suggestion(tool, self.tools)
                        + " (a made-up tool the gate must refuse needs `refused: true`)",
                    )
            elif tool == "end_call" and not turn.get("refused"):
                ended = ended or i + 1

    def step_names(self) -> list[str]:
        return [s.id for s in self.playbook.steps] + [END] if self.playbook is not None else []

    def step_argument(self, path: JsonPath, step: object, turn: dict[str, object]) -> None:
        """goto_step's ``step`` names a step of the playbook (unless the call must fail)."""
        names = self.step_names()
        if not names or "error" in turn or turn.get("refused") or not isinstance(step, str) or step in names:
            return
        self.error(
            path,
            f"'{step}' is not a step of playbook '{self.playbook.name}'"  # type: ignore[union-attr]
            + (suggestion(step, names) or f"; steps: {', '.join(names)}"),
        )

    # --- expectations
    def expect(self) -> None:
        expect = self.data.get("expect") or {}
        known = self.tools
        if self.inbound:
            for key in GOAL_EXPECTATIONS:
                if key in expect:
                    self.error(("expect", key), f"'{key}' is for goal calls (direction: outbound)", key=True)
        for key in ("tools_offered", "tools_not_offered"):
            for i, name in enumerate(expect.get(key) or []):
                if name not in known:
                    self.error(("expect", key, i), f"'{name}' is not a tool of this project" + suggestion(name, known))
        names = self.step_names()
        for i, step in enumerate(expect.get("steps_visited") or []):
            if names and step not in names:
                self.error(
                    ("expect", "steps_visited", i),
                    f"'{step}' is not a step of playbook '{self.playbook.name}'"  # type: ignore[union-attr]
                    + (suggestion(step, names) or f"; steps: {', '.join(names)}"),
                )
        for i, call in enumerate(expect.get("tool_calls") or []):
            name = call["tool"]
            if name not in known and name not in self.forged:
                self.error(
                    ("expect", "tool_calls", i, "tool"),
                    f"'{name}' is not a tool of this project" + suggestion(name, [*known, *self.forged]),
                )
        if "greeting" in expect and not self.inbound:
            self.error(("expect", "greeting"), "'greeting' is for inbound calls", key=True)
        for i, reminder in enumerate(expect.get("reminders") or []):
            if "due" in reminder:
                self.time_words(("expect", "reminders", i, "due"), reminder["due"])
        for i, sms in enumerate(expect.get("sms") or []):
            if "to" in sms:
                self.who(("expect", "sms", i, "to"), sms["to"], allow_unknown=False)
        for i, message in enumerate(expect.get("messages") or []):
            if "caller_number" in message:
                self.who(("expect", "messages", i, "caller_number"), message["caller_number"], allow_unknown=True)
        for i, hook in enumerate(expect.get("webhooks") or []):
            if hook["name"] not in self.webhook_names():
                self.error(("expect", "webhooks", i, "name"), self.not_a_webhook(hook["name"]))


def cross_check(doc: Document, project: Project) -> list[Diagnostic]:
    """Problems the schema cannot see, each pointing at the YAML that causes it."""
    return _Checker(doc, project).run()
