"""A playbook made ready for one call: inputs checked, instructions rendered, steps walkable.

Built for a speech-to-speech model: the call has ONE stable tool set (everything the
playbook may use, so the Gemini Live session never has to change tools), and step changes
are data the runtime announces to the model as text. The runtime asks this plan which
tools the current step allows and where a transition leads.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tars.config.diagnostics import suggestion
from tars.graph.compile import END, PLACEHOLDER
from tars.project import Input, Playbook, Project, Step, Transition, thaw

NOT_YET_KNOWN = "(not yet known)"


class InputError(ValueError):
    """Inputs that do not fit the playbook; ``problems`` lists each, ``missing`` the required ones."""

    def __init__(self, problems: list[str], missing: list[Input]):
        self.problems = problems
        self.missing = missing
        super().__init__("; ".join(problems))


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{{ name }}`` placeholders; unknown ones read as "(not yet known)"."""

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return NOT_YET_KNOWN if value is None or value == "" else str(value)

    return PLACEHOLDER.sub(fill, template)


def coerce_inputs(playbook: Playbook, given: Mapping[str, Any]) -> dict[str, Any]:
    """Check and convert inputs (often strings from ``--var k=v``); defaults filled in."""
    problems: list[str] = []
    missing: list[Input] = []
    values: dict[str, Any] = {}
    for key in given:
        if key not in playbook.inputs:
            problems.append(
                f"'{key}' is not an input of playbook '{playbook.name}'"
                f"{suggestion(key, playbook.inputs)}; it takes: {', '.join(playbook.inputs) or 'none'}"
            )
    for name, spec in playbook.inputs.items():
        if name not in given or given[name] is None or given[name] == "":
            if spec.required:
                missing.append(spec)
                problems.append(f"input '{name}' is required ({spec.description or spec.type})")
            elif spec.default is not None:
                values[name] = spec.default
            continue
        try:
            values[name] = _convert(spec, given[name])
        except ValueError as exc:
            problems.append(f"input '{name}': {exc}")
    if problems:
        raise InputError(problems, missing)
    return values


def _convert(spec: Input, value: Any) -> Any:
    text = str(value).strip()
    kind = spec.type
    if kind == "integer":
        if isinstance(value, bool) or not re.fullmatch(r"[-+]?\d+", text):
            raise ValueError(f"expected a whole number, got {text!r}")
        result: Any = int(text)
    elif kind == "number":
        try:
            result = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    elif kind == "boolean":
        lowered = text.lower()
        if lowered not in ("true", "false", "yes", "no"):
            raise ValueError(f"expected true or false, got {text!r}")
        result = lowered in ("true", "yes")
    elif kind == "date":
        try:
            result = dt.date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"expected a date like 2026-12-01, got {text!r}") from None
    elif kind == "time":
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text):
            raise ValueError(f"expected a time like 14:30, got {text!r}")
        result = text
    elif kind == "datetime":
        try:
            result = dt.datetime.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"expected a date and time like 2026-12-01T14:30, got {text!r}") from None
    elif kind == "phone":
        if not re.fullmatch(r"\+[1-9]\d{6,14}", text):
            raise ValueError(f"expected an E.164 phone number like +15551234567, got {text!r}")
        result = text
    else:
        result = text if isinstance(value, str) else value
    if spec.enum is not None and result not in spec.enum:
        raise ValueError(
            f"{result!r} is not one of: {', '.join(map(str, spec.enum))}{suggestion(result, map(str, spec.enum))}"
        )
    return result


@dataclass(frozen=True)
class CallPlan:
    """One goal call's compiled playbook: what the runtime walks during the call."""

    playbook: Playbook
    inputs: Mapping[str, Any]
    context: Mapping[str, Any]
    tool_set: tuple[str, ...]
    goal: str
    steps: Mapping[str, Step] = field(repr=False)

    @property
    def start(self) -> str:
        return self.playbook.steps[0].id

    @property
    def outcome_schema(self) -> dict[str, Any]:
        return thaw(self.playbook.outcome_schema)

    def values(self, outcome: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {**self.context, **self.inputs, **(outcome or {})}

    def instructions(self, step_id: str, outcome: Mapping[str, Any] | None = None) -> str:
        return render(self.steps[step_id].instructions, self.values(outcome))

    def allowed_tools(self, step_id: str) -> tuple[str, ...]:
        """Tools the model may use in this step: the step's list, else the playbook's."""
        step = self.steps[step_id]
        return step.tools if step.tools else self.tool_set

    def choices(self, step_id: str) -> tuple[Transition, ...]:
        """Transitions the model picks between (``goto_step``); empty for fixed ones."""
        return tuple(t for t in self.steps[step_id].transitions if t.kind == "choice")

    def next_step(self, step_id: str, outcome: Mapping[str, Any] | None = None, choice: str | None = None) -> str:
        """Where the call goes from ``step_id``: a step id or ``end``.

        Fixed transitions go where they say; outcome-driven ones follow the recorded field
        (or the default); model-chosen ones go to ``choice`` if it is one of them.
        """
        transitions = self.steps[step_id].transitions
        outcome = outcome or {}
        for t in transitions:
            if t.kind == "always":
                return t.to
            if t.kind == "case" and t.field in outcome and str(outcome[t.field]) == str(t.value):
                return t.to
        for t in transitions:
            if t.kind == "default":
                return t.to
        if choice is not None:
            for t in transitions:
                if t.kind == "choice" and t.to == choice:
                    return t.to
            raise ValueError(f"'{choice}' is not a way out of step '{step_id}'")
        return END

    def announcement(self, step_id: str, outcome: Mapping[str, Any] | None = None) -> str:
        """The text that tells the model a new step has begun (sent as user text, not a new session)."""
        if step_id == END:
            return "[Playbook] All steps are done. Say goodbye politely and end the call."
        lines = [f"[Playbook step: {step_id}] {self.instructions(step_id, outcome)}"]
        allowed = self.allowed_tools(step_id)
        lines.append(f"Tools allowed in this step: {', '.join(allowed) if allowed else 'none'}.")
        choices = self.choices(step_id)
        if choices:
            options = "; ".join(f"'{t.to}' when {t.when}" for t in choices)
            lines.append(f"When this step is done, call goto_step with one of: {options}.")
        elif any(t.kind in ("case", "default") for t in self.steps[step_id].transitions):
            lines.append("When this step is done, record the outcome; the next step follows from it.")
        else:
            target = next((t.to for t in self.steps[step_id].transitions if t.kind == "always"), END)
            lines.append(f"When this step is done, call goto_step with step '{target}'.")
        return " ".join(lines)


def prepare_call(
    project: Project, playbook_name: str, inputs: Mapping[str, Any], context: Mapping[str, Any] | None = None
) -> CallPlan:
    """Check inputs and build the CallPlan (raises KeyError for an unknown playbook, InputError for inputs)."""
    if playbook_name not in project.playbooks:
        raise KeyError(f"'{playbook_name}' is not a playbook{suggestion(playbook_name, project.playbooks)}")
    playbook = project.playbooks[playbook_name]
    values = coerce_inputs(playbook, inputs)
    speaking = project.persona_for(playbook)
    ctx = {"owner_name": project.owner.name, "assistant_name": speaking.name, **(context or {})}
    return CallPlan(
        playbook=playbook,
        inputs=MappingProxyType(values),
        context=MappingProxyType(ctx),
        tool_set=playbook.tools,
        goal=render(playbook.goal, {**ctx, **values}),
        steps=MappingProxyType({s.id: s for s in playbook.steps}),
    )
