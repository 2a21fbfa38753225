"""Goal calls asked for from inside a call ("call the dentist and book me a check-up"), and
what happens when they end.

``CallDesk`` is what the tools of one live call reach the switchboard through (the tools'
``Switchboard`` Protocol): ``make_goal_call`` resolves the target as `tars call` does (an
ambiguous or fuzzy match is read back for a yes first), checks the playbook and its inputs,
and places the call now, or schedules it for when the calling window opens; tools that
*need* ``make_goal_call`` in the same batch ("then email me what they said") are attached to
the goal call and run once its outcome is known (``after_outcome``).

``report`` sends a finished goal call's report: said in the owner's live call if there is
one (on whichever server holds it), else through the delivery channel; then the attached
tools run, recorded on the call that asked for them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tars.caller import OWNER, Caller
from tars.calls.gate import ToolGate
from tars.calls.recorder import CallRecorder
from tars.config.secrets import mask_text
from tars.graph.call_plan import InputError, prepare_call
from tars.scheduler.window import next_open
from tars.telephony import messages
from tars.telephony.switchboard import PlacementError, Switchboard, wall
from tars.tools.builtins import ToolContext, ToolError, execute
from tars.tools.call import ToolCall

log = logging.getLogger("tars.goal_requests")

#: A match this good is the name, an alias or the number itself: it dials without a read-back.
EXACT = 0.999


class CallDesk:
    """The switchboard as one live call's tools see it."""

    def __init__(self, board: Switchboard, call_id: int, role: str, callee: str = ""):
        self.board = board
        self.call_id = call_id
        self.role = role
        self.callee = callee

    # ------------------------------------------------------------------ make_goal_call
    async def make_goal_call(self, args: Mapping[str, Any]) -> dict[str, Any]:
        from tars.store.contacts import resolve_in
        from tars.store.errors import StoreError

        project = self.board.project
        playbook = str(args.get("playbook") or "")
        if playbook not in project.playbooks:
            known = ", ".join(sorted(project.playbooks)) or "none"
            raise ToolError(f"there is no playbook called {playbook!r}; the playbooks are: {known}")
        role = project.roles.get(self.role)
        if role is not None and not role.may_start(playbook):
            allowed = ", ".join(role.playbooks or ()) or "none"
            raise ToolError(
                f"the {self.role} role may not start the {playbook} playbook (roles.{self.role}.playbooks in "
                f"tars.yaml); it may start: {allowed}. Nothing was dialled."
            )
        target = str(args.get("target") or "").strip()
        try:
            found = await self.board.db(lambda s: resolve_in(s, project, target))
        except StoreError as exc:
            raise ToolError(str(exc)) from None
        if found.best is None:
            if found.candidates:
                return {
                    "ambiguous": [{"name": c.name, "phone": c.phone} for c in found.candidates[:5]],
                    "hint": "ask which one they mean, then call make_goal_call again with that exact name",
                }
            raise ToolError(f"nobody called {target!r} in the contacts or the directory; nothing was dialled")
        best = found.best
        if best.score < EXACT and not args.get("confirmed"):
            return {
                "confirm": f"{best.name} ({best.phone})",
                "hint": (
                    f"'{target}' is not an exact name: ask whether they mean {best.name}, and if they say yes "
                    "call make_goal_call again with confirmed true. Nothing was dialled."
                ),
            }
        inputs = dict(args.get("inputs") or {})
        try:
            plan = prepare_call(project, playbook, inputs)
        except InputError as exc:
            raise ToolError(f"the inputs do not fit the {playbook} playbook: {exc}; ask for what is missing") from None
        columns: dict[str, Any] = {
            "callee": best.name,
            "role": plan.playbook.role,
            "requested_by": self.call_id,
            "report_via": args.get("report_via") or None,
        }
        now = self.board.clock()
        opens = next_open(project, playbook, best.phone, now)
        if opens > now:
            return await self._schedule(playbook, dict(plan.inputs), best, opens, columns)
        try:
            call = await self.board.place_goal_call(
                number=best.phone,
                playbook=playbook,
                inputs=dict(plan.inputs),
                contact_id=best.contact_id,
                **columns,
            )
        except PlacementError as exc:
            raise ToolError(f"the call to {best.name} could not be placed: {exc}") from None
        log.info("call %s asked for goal call %s (%s to %s)", self.call_id, call.id, playbook, best.name)
        return {
            "placed": True,
            "call_id": call.id,
            "callee": best.name,
            "awaiting_outcome": True,
            "say": f"Tell {project.owner.name} you are calling {best.name} now and will report back.",
        }

    async def _schedule(
        self, playbook: str, inputs: dict[str, Any], best: Any, opens: Any, columns: dict[str, Any]
    ) -> dict[str, Any]:
        from tars.store.call_queue import schedule_call
        from tars.timeparse import show

        project = self.board.project
        call = await self.board.db(
            lambda s: schedule_call(
                s,
                from_number=self.board.number,
                to_number=best.phone,
                playbook=playbook,
                inputs=inputs,
                at=opens,
                contact_id=best.contact_id,
                **columns,
            )
        )
        self.board.wake_scheduler()
        when = show(opens, project.owner.timezone)
        return {
            "scheduled": when,
            "call_id": call.id,
            "callee": best.name,
            "awaiting_outcome": True,
            "say": f"{best.name} cannot be called now (outside its calling hours); tell "
            f"{project.owner.name} TARS will call at {when} and report back.",
        }

    async def after_outcome(self, goal_call_id: int, tool: str, args: Mapping[str, Any]) -> None:
        """Run ``tool`` once the goal call has its outcome (stored on the goal call)."""
        from tars.store.calls import get_call, update_call

        call = await self.board.db(lambda s: get_call(s, goal_call_id))
        queued = [
            *(call.after_outcome or []),
            {"tool": tool, "args": dict(args), "role": self.role, "by": self.call_id},
        ]
        await self.board.db(lambda s: update_call(s, goal_call_id, after_outcome=queued))

    # ------------------------------------------------------------------ messages
    async def ask_owner(self, question: str, timeout: float) -> str:
        asker = messages.Asker(self.call_id, self.callee)
        try:
            return await messages.ask_owner(self.board, asker, question, timeout)
        except messages.QuestionError as exc:
            raise ToolError(str(exc)) from None

    async def tell_owner(self, note: str) -> dict[str, Any]:
        try:
            return await messages.tell_owner(self.board, messages.Asker(self.call_id, self.callee), note)
        except messages.QuestionError as exc:
            raise ToolError(str(exc)) from None

    async def answer_question(self, code: str, answer: str) -> dict[str, Any]:
        try:
            return await messages.answer_question(self.board, self.call_id, code, answer)
        except messages.QuestionError as exc:
            raise ToolError(str(exc)) from None


# ------------------------------------------------------------------------------ after the call


async def report(board: Switchboard, call_id: int, text: str, payload: Mapping[str, Any]) -> None:
    """The finished goal call's report, then the tools attached to its outcome. Never raises."""
    from tars.store.call_messages import new_message, owner_live_call
    from tars.store.calls import get_call

    call = await board.db(lambda s: get_call(s, call_id))
    book = board.project.playbooks.get(call.playbook or "")
    via = book.report_via if book is not None else "default"
    channel = board.outbox.channel_for("call_reports") if via == "default" else via
    live = await board.db(lambda s: owner_live_call(s, wall())) if call.requested_by else None
    try:
        if live is not None:
            await board.db(
                lambda s: new_message(
                    s, kind="report", text=text, from_call_id=call_id, to_call_id=live.id, channel="call"
                )
            )
            board.wake_scheduler()
        else:
            await board.outbox.deliver(call.report_via or channel, text, dict(payload))
    except Exception:
        log.exception("the report of goal call %s could not be sent", call_id)
    for follow_up in call.after_outcome or []:
        await _follow_up(board, call, follow_up, {"text": text, **dict(payload)})


async def _follow_up(board: Switchboard, call: Any, follow_up: Mapping[str, Any], result: Mapping[str, Any]) -> None:
    """One attached tool, through the same gate as in a call (role, arguments, timeout), run
    with the goal call's result as its upstream and recorded on the call that asked for it."""
    project = board.project
    role = str(follow_up.get("role") or OWNER)
    asker = int(follow_up.get("by") or call.requested_by or call.id)
    ctx = ToolContext(
        project, board.database, Caller(project.owner.phone, role, project.owner.name), _NoLiveCall(), board.outbox,
        asker,
    )  # fmt: skip
    recorder = CallRecorder(board.database, asker, lambda text: mask_text(text, project.secrets))
    granted = project.roles[role].tools if role in project.roles else ()
    gate = ToolGate(project, role, granted, lambda c, _: execute(ctx, c, {"make_goal_call": dict(result)}), recorder)
    tool = ToolCall(f"after-{call.id}", str(follow_up.get("tool")), dict(follow_up.get("args") or {}))
    [outcome] = await gate.run_batch([tool])
    if "error" in outcome or "refused" in outcome:
        log.warning("the follow-up %s of goal call %s did not run: %s", tool.name, call.id, outcome)
    await recorder.flush()


class _NoLiveCall:
    """The controls of a follow-up tool: there is no live call to act on."""

    async def end_call(self, reason: str) -> None:
        raise ToolError("there is no live call to end")

    async def press_digits(self, digits: str) -> None:
        raise ToolError("there is no live call to press keys on")

    async def record_outcome(self, outcome: Mapping[str, Any]) -> dict[str, Any]:
        raise ToolError("there is no live call")

    async def goto_step(self, step: str) -> dict[str, Any]:
        raise ToolError("there is no live call")

    async def ask_owner(self, question: str) -> str:
        raise ToolError("there is no live call")
