"""The end-to-end harness now lives in ``tars.scenarios.line`` (shared with `tars simulate`); the
goal-call helpers the server and scheduler tests share live here."""

from __future__ import annotations

from typing import Any

from tars.emulators.gemini.emulator import CallTool, Say
from tars.scenarios.line import ACCOUNT, API_KEY, PUBLIC, TOKEN, Line, make_project

__all__ = ["ACCOUNT", "API_KEY", "PUBLIC", "TOKEN", "Line", "Receptionist", "make_project", "place"]


async def place(line: Line, target: str, playbook: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """``POST /api/calls`` as `tars call` does: the JSON answer, with the HTTP status as ``http``."""
    status, answer = await line.place_goal_call(target, playbook, inputs)
    return {**answer, "http": status}


class Receptionist:
    """The emulated model on the example project's ``book_appointment`` call to the dentist,
    reacting to the playbook's step announcements."""

    def __init__(self, slot: str | None = "2026-11-25T15:00:00+00:00", forbidden: str | None = None):
        self.slot = slot
        self.forbidden = forbidden
        self.results: list[tuple[str, dict[str, Any]]] = []

    async def on_start(self, session: Any) -> list[Any]:
        first = [Say("Hello, this is TARS calling for Alex Morgan. I'd like to book a check-up.")]
        if self.forbidden:
            first.append(CallTool(self.forbidden, {}))
        return [*first, CallTool("goto_step", {"step": "find_slot"})]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "Wednesday at 3" in text:
            return [CallTool("record_outcome", {"status": "booked", "when": self.slot})]
        if "nothing on Wednesday" in text:
            return [CallTool("record_outcome", {"status": "no_slot", "notes": "Thursday 10am or Friday 2pm"})]
        return []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        """The next step's instructions come back in the result of the call that moved there."""
        self.results.append((name, response))
        step = response.get("next_step")
        if step == "find_slot":
            return [Say("Do you have anything on Wednesday?")]
        if step == "confirm":
            return [Say("Wonderful: Wednesday at three, for Alex Morgan."), CallTool("goto_step", {"step": "wrap_up"})]
        if step == "alternatives":
            return [Say("Alex will call back to confirm one of those."), CallTool("goto_step", {"step": "wrap_up"})]
        if step == "wrap_up":
            return [Say("Thank you, goodbye."), CallTool("end_call", {"reason": "done"})]
        return []
