"""The tool gate: every tool call the model makes passes through here, and only here.

The model was only offered the tools the caller's role grants. That is the first
check; this is the second, because a model can be talked into calling a tool it was
never offered (prompt injection) or simply hallucinate one. For each batch of calls:

1. the tool must be offered on this call and granted to the role;
2. a goal call's current step must allow it;
3. the arguments must match the tool's JSON Schema;
4. allowed calls run in the order the task planner gives (needs first, independent
   ones concurrently), each under its timeout;
5. every call — allowed or refused, and why — is recorded as a ``ToolInvocation``.

A refusal or a failure is a short result the model can speak about; nothing raises
into the pipeline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tars import metrics, telemetry
from tars.config.schema import validate_value
from tars.errors import UserError
from tars.graph.planner import run
from tars.project import Project, thaw
from tars.tools.builtins import ToolError
from tars.tools.call import ToolCall

log = logging.getLogger("tars.gate")

#: A policy hook for goal calls: None if the tool is allowed now, else why not.
StepPolicy = Callable[[str], str | None]


class Executor(Protocol):
    def __call__(self, call: ToolCall, upstream: Mapping[str, Any]) -> Awaitable[Any]: ...


class Recorder(Protocol):
    async def tool_invocation(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        allowed: bool,
        result: Any,
        reason: str | None,
        duration_ms: int | None,
    ) -> None: ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str | None = None


class ToolGate:
    """Checks, orders, runs and records the model's tool calls for one call."""

    def __init__(
        self,
        project: Project,
        role: str,
        offered: Sequence[str],
        execute: Executor,
        recorder: Recorder,
        step_policy: StepPolicy | None = None,
        schemas: Mapping[str, Mapping[str, Any]] | None = None,
        runtime_tools: Sequence[str] = (),
    ):
        self.project = project
        self.role = role
        self.offered = tuple(offered)
        self.execute = execute
        self.recorder = recorder
        self.step_policy = step_policy
        self.runtime_tools = tuple(runtime_tools)  # the call's own controls (goto_step), offered with the role's
        self._schemas = {name: thaw(project.tools[name].parameters) for name in self.offered if name in project.tools}
        self._schemas.update({name: dict(schema) for name, schema in (schemas or {}).items()})

    def check(self, call: ToolCall) -> Decision:
        granted = self.project.roles[self.role].tools if self.role in self.project.roles else ()
        runtime = call.name in self.runtime_tools
        if call.name not in self.offered or (call.name not in granted and not runtime):
            return Decision(False, f"'{call.name}' is not available to the {self.role} role on this call")
        if self.step_policy is not None:
            why = self.step_policy(call.name)
            if why:
                return Decision(False, why)
        schema = self._schemas.get(call.name)
        if schema is not None:
            problems = validate_value(dict(call.args), schema)
            if problems:
                return Decision(False, "invalid arguments: " + "; ".join(problems))
        return Decision(True)

    async def run_batch(self, calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
        """Results for each call, in the order asked (refusals included)."""
        decisions = [self.check(call) for call in calls]
        results: dict[str, dict[str, Any]] = {}
        for call, decision in zip(calls, decisions, strict=True):
            if not decision.allowed:
                log.warning("refused tool call %s(%s): %s", call.name, dict(call.args), decision.reason)
                results[call.id] = {"refused": decision.reason}
                metrics.TOOL_CALLS.labels(self._label(call.name), "refused").inc()
                name = self._label(call.name)
                telemetry.past_span(f"tool {name}", time.monotonic(), tool=name, decision="refused")
                await self.recorder.tool_invocation(
                    call.name, call.args, allowed=False, result=None, reason=decision.reason, duration_ms=0
                )
        allowed = [c for c, d in zip(calls, decisions, strict=True) if d.allowed]

        async def timed(call: ToolCall, upstream: Mapping[str, Any]) -> Any:
            """Run one call under its timeout and record it the moment it finishes."""
            started = time.perf_counter()
            timeout = self.project.tools[call.name].timeout_seconds if call.name in self.project.tools else 10
            arguments = json.dumps(dict(call.args), default=str)[:2000] if telemetry.transcripts() else None
            try:
                with telemetry.span(f"tool {call.name}", tool=call.name, decision="allowed", arguments=arguments):
                    value = await asyncio.wait_for(self.execute(call, upstream), timeout)
            except Exception as exc:
                error = (
                    f"{call.name} took too long and was stopped"
                    if isinstance(exc, TimeoutError)
                    else f"{type(exc).__name__}: {exc}"
                )
                said = str(exc) if isinstance(exc, UserError | ToolError) and str(exc) else _user_message(error)
                results[call.id] = {"error": said}
                await self._record(call, results[call.id], error, started)
                raise
            results[call.id] = value if isinstance(value, dict) else {"result": value}
            await self._record(call, results[call.id], None, started)
            return value

        for outcome in await run(allowed, self.project.needs, timed):
            if outcome.skipped:  # a call it needed failed; it never ran
                results[outcome.call.id] = {"error": outcome.error}
                await self._record(outcome.call, results[outcome.call.id], outcome.error, time.perf_counter())
        return [results[call.id] for call in calls]

    def _label(self, name: str) -> str:
        """A tool's metric label: a name the model made up is not one (labels stay bounded)."""
        return name if name in self.project.tools or name in self.runtime_tools else "unknown"

    async def _record(self, call: ToolCall, result: dict[str, Any], reason: str | None, started: float) -> None:
        duration = int((time.perf_counter() - started) * 1000)
        metrics.TOOL_CALLS.labels(self._label(call.name), "failed" if reason else "allowed").inc()
        await self.recorder.tool_invocation(
            call.name, call.args, allowed=True, result=result, reason=reason, duration_ms=duration
        )


def _user_message(error: str) -> str:
    """A tool's exception as one line for the model (no class names for UserErrors)."""
    for prefix in (
        "UserError: ",
        "InvalidValue: ",
        "NotFound: ",
        "AlreadyExists: ",
        "TimeParseError: ",
        "StoreError: ",
        "ToolError: ",
    ):
        if error.startswith(prefix):
            return error[len(prefix) :]
    return error
