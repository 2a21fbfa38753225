"""Walking a playbook during a goal call, with one Gemini Live session and one tool set.

Pipecat Flows cannot drive Gemini Live (tool and instruction changes are ignored or force
a reconnect), so TARS walks its own compiled graph: it knows the current step, tells the
model about step changes as text, refuses tools the current step does not allow (the
gate asks ``policy``), and follows transitions — fixed ones and model-chosen ones via
``goto_step``, outcome-driven ones when ``record_outcome`` sets the field.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tars.config.schema import validate_value
from tars.graph.call_plan import CallPlan
from tars.graph.compile import END
from tars.tools.builtins import ToolError

log = logging.getLogger("tars.playbook")

#: Tools the runtime itself provides on goal calls (not declared in tars.yaml).
RUNTIME_TOOLS = ("goto_step",)
ALWAYS_ALLOWED = ("record_outcome", "end_call", "goto_step")


@dataclass
class PlaybookRun:
    """The state of one goal call's playbook: where it is, what it has found out."""

    plan: CallPlan
    #: Told of each step change (the session writes it into the transcript).
    announce: Callable[[str], Awaitable[None]]
    step: str = ""
    outcome: dict[str, Any] = field(default_factory=dict)
    recorded: bool = False
    visited: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.step = self.step or self.plan.start
        if not self.visited:
            self.visited.append(self.step)

    # -------------------------------------------------------------- across streams
    def state(self) -> dict[str, Any]:
        """What a fresh stream needs to go on where this one stopped (stored on the call)."""
        return {"step": self.step, "outcome": dict(self.outcome), "recorded": self.recorded, "visited": self.visited}

    @classmethod
    def resumed(
        cls, plan: CallPlan, state: Mapping[str, Any], announce: Callable[[str], Awaitable[None]]
    ) -> PlaybookRun:
        """The run stored by ``state()``, on this plan; an unknown step starts over."""
        step = str(state.get("step") or "")
        if step != END and step not in plan.steps:
            log.warning("stored step %r is not in playbook %s; starting over", step, plan.playbook.name)
            return cls(plan, announce=announce)
        return cls(
            plan,
            announce=announce,
            step=step,
            outcome=dict(state.get("outcome") or {}),
            recorded=bool(state.get("recorded")),
            visited=[str(v) for v in state.get("visited") or [step]],
        )

    # -------------------------------------------------------------- what the model is offered
    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        """Per-call parameter schemas: record_outcome takes the playbook's outcome; goto_step the step names."""
        targets = sorted(
            {t.to for s in self.plan.steps.values() for t in s.transitions if t.kind in ("always", "choice")}
        )
        return {
            "record_outcome": self.plan.outcome_schema,
            "goto_step": {
                "type": "object",
                "properties": {
                    "step": {
                        "type": "string",
                        "enum": targets or [END],
                        "description": "The step to go to next (or end).",
                    }
                },
                "required": ["step"],
                "additionalProperties": False,
            },
        }

    def descriptions(self) -> dict[str, str]:
        return {
            "goto_step": "Move the call to the next step of the playbook when the current step is done.",
            "record_outcome": "Record the result of this call as soon as it is known (fields per the playbook).",
        }

    def opening(self) -> str:
        return f"[The call has connected; the other party has answered. {self.plan.announcement(self.step)}]"

    # -------------------------------------------------------------- the gate's question
    def policy(self, tool: str) -> str | None:
        """None if ``tool`` may be used in the current step, else why not."""
        if self.step == END:
            return None if tool in ("end_call", "record_outcome") else "the playbook is finished; say goodbye"
        allowed = self.plan.allowed_tools(self.step)
        if tool in allowed or tool in ALWAYS_ALLOWED:
            return None
        return (
            f"'{tool}' is not allowed in step '{self.step}' (allowed: {', '.join(allowed) or 'none'}); "
            "follow the current step"
        )

    # -------------------------------------------------------------- moves
    async def record_outcome(self, values: Mapping[str, Any]) -> dict[str, Any]:
        merged = {**self.outcome, **values}
        problems = validate_value(merged, self.plan.outcome_schema)
        if problems:
            raise ToolError("the outcome does not fit the playbook: " + "; ".join(problems))
        self.outcome = merged
        self.recorded = True
        result: dict[str, Any] = {"recorded": merged}
        transitions = self.plan.steps[self.step].transitions if self.step != END else ()
        if any(t.kind in ("case", "default") for t in transitions):
            result.update(await self._move(self.plan.next_step(self.step, self.outcome)))
        return result

    async def goto_step(self, target: str) -> dict[str, Any]:
        if self.step == END:
            raise ToolError("the playbook is already finished")
        transitions = self.plan.steps[self.step].transitions
        fixed = [t for t in transitions if t.kind == "always"]
        choices = [t for t in transitions if t.kind == "choice"]
        if fixed:
            destination = fixed[0].to
            if target not in (destination, ""):
                raise ToolError(f"from step '{self.step}' the playbook goes to '{destination}', not '{target}'")
        elif choices:
            destination = self.plan.next_step(self.step, choice=target) if target in [c.to for c in choices] else ""
            if not destination:
                raise ToolError(
                    f"'{target}' is not a way out of step '{self.step}'; "
                    f"choose one of: {', '.join(c.to for c in choices)}"
                )
        else:
            raise ToolError(f"step '{self.step}' moves on when you record the outcome, not with goto_step")
        return await self._move(destination)

    async def _move(self, destination: str) -> dict[str, Any]:
        """Enter ``destination``; its instructions go back to the model in the tool result.

        Returning them with the result of the call that caused the move (rather than as
        injected text) keeps the model's turn whole: Gemini Live treats new realtime text
        as the other party speaking, which would cut the assistant off mid-sentence.
        """
        log.info("playbook %s: %s -> %s", self.plan.playbook.name, self.step, destination)
        self.step = destination
        self.visited.append(destination)
        text = self.plan.announcement(destination, self.outcome)
        await self.announce(text)
        return {"next_step": destination, "instructions": text}

    # -------------------------------------------------------------- the end
    @property
    def succeeded(self) -> bool:
        book = self.plan.playbook
        if not self.recorded:
            return False
        if book.success_field is None:
            return True
        return self.outcome.get(book.success_field) in book.success_values
