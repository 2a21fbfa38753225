"""Function calls the emulated model gives up on, and the ones it does not wait for.

Which model does what is in the catalogue (``models``: traits). Here is what the
emulator then does:

* **BLOCKING calls cancelled by new input** (``CANCELS_BLOCKING_ON_INPUT``, the 3.x
  models): a BLOCKING call still unanswered when the client sends new input — caller
  speech (its onset, as the service's activity detection hears it), ``realtimeInput.text``
  (not pipecat's one-space nudge) or a ``clientContent`` user turn — is cancelled: the turn
  that waited for it stops, ``toolCallCancellation{ids}`` goes out, then ``turnComplete``,
  and the input is answered as a new turn. The service's own description of the message:
  "Notification for the client that a previously issued ToolCallMessage with the
  specified ids should have been not executed and should be cancelled. If there were
  side-effects to those tool calls, clients may attempt to undo the tool calls. This
  message occurs only in cases where the clients interrupt server turns" (google-genai
  ``LiveServerToolCallCancellation``); what clients saw: pipecat#1564 ("when interrupted,
  Gemini disregards the function call and keeps moving on"), and the workarounds
  clients adopted, muting input while a call runs (pipecat#1564's STTMuteFilter,
  autonomous-ai/autonomous-os#237: "gate mic audio while a Gemini tool call is pending").
* **A late FunctionResponse for a cancelled id** is taken without error and without
  effect: "You do not need to send FunctionResponseParts for the cancelled
  FunctionCallParts" (firebase ``LiveServerToolCallCancellation``, Kotlin reference),
  and a session "won't act on a FunctionResponse for a call it didn't issue, so the model
  stays blocked" (pipecat#5497, verified against the live API). It is recorded as stale.
* **NON_BLOCKING calls** (``NON_BLOCKING_TOOLS``): the model does not wait; its turn goes
  on and ends. New input never cancels them. Their response's ``scheduling``
  (``FunctionResponseScheduling``; "Only applicable to NON_BLOCKING function calls, is
  ignored otherwise. Defaults to WHEN_IDLE", googleapis.github.io/java-genai) decides
  what the result does: ``INTERRUPT`` "interrupt ongoing generation and prompt to
  generate output"; ``WHEN_IDLE`` "prompt to generate output without interrupting
  ongoing generation"; ``SILENT`` "only add the result to the conversation context, do
  not interrupt or trigger generation" (google-genai ``FunctionResponseScheduling``,
  googleapis.github.io/dotnet-genai). pipecat puts ``scheduling`` both in the response
  and beside it (its ``_tool_result``); either is read. A response with
  ``willContinue: true`` is an intermediate result: the call stays open.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from tars.emulators.gemini.models import (
    CANCELS_BLOCKING_ON_INPUT,
    NON_BLOCKING_BY_DEFAULT,
    NON_BLOCKING_TOOLS,
    ModelCatalogue,
)
from tars.emulators.gemini.session import LiveSession
from tars.emulators.gemini.wire import INVALID_ARGUMENT, ProtocolViolation

BLOCKING = "BLOCKING"
NON_BLOCKING = "NON_BLOCKING"
SCHEDULINGS = frozenset({"INTERRUPT", "WHEN_IDLE", "SILENT"})


class Turns(Protocol):
    """What the rules need of a Live connection (``turns.ModelTurns``)."""

    @property
    def session(self) -> LiveSession | None: ...

    async def send(self, frame: dict[str, Any]) -> None: ...

    async def stop_turn(self) -> bool: ...

    async def close_turn(self, *, interrupted: bool) -> None: ...

    def answer_later(self, name: str, response: dict[str, Any]) -> None: ...


def behaviour(session: LiveSession, models: ModelCatalogue, name: str) -> str:
    """BLOCKING or NON_BLOCKING: the declaration's ``behavior``, else the model's default."""
    if not models.has(session.model, NON_BLOCKING_TOOLS):
        return BLOCKING  # the model ignores the field (module docstring)
    declared = (session.tools.get(name) or {}).get("behavior")
    if declared in (BLOCKING, NON_BLOCKING):
        return str(declared)
    return NON_BLOCKING if models.has(session.model, NON_BLOCKING_BY_DEFAULT) else BLOCKING


def scheduling(response: dict[str, Any]) -> str:
    """The response's ``scheduling`` (beside or inside ``response``), WHEN_IDLE by default."""
    inner = response.get("response")
    value = response.get("scheduling") or (inner.get("scheduling") if isinstance(inner, dict) else None)
    return str(value) if value in SCHEDULINGS else "WHEN_IDLE"


def blocking_pending(session: LiveSession) -> list[str]:
    """Ids of the BLOCKING calls still waiting for their response."""
    return [call_id for call_id in session._calls if call_id not in session._async_calls]


def forget(session: LiveSession, ids: list[str]) -> None:
    """The calls ``ids`` are over without a result: a late response for one is stale."""
    for call_id in ids:
        entry = session._calls.pop(call_id, None)
        if entry is not None:
            entry[1].cancel()
        session._async_calls.discard(call_id)
        session._stale_calls.add(call_id)


async def cancel_on_input(turns: Turns, models: ModelCatalogue, what: str) -> bool:
    """New client input (``what``) cancels the pending BLOCKING calls, on the models that do so."""
    session = turns.session
    if session is None or not models.has(session.model, CANCELS_BLOCKING_ON_INPUT):
        return False
    ids = blocking_pending(session)
    if not ids:
        return False
    await turns.stop_turn()
    forget(session, ids)
    session.cancellations.append({"t": time.monotonic(), "ids": ids, "by": what})
    await turns.send({"toolCallCancellation": {"ids": ids}})
    await turns.close_turn(interrupted=True)
    return True


async def take_responses(turns: Turns, responses: list[dict[str, Any]]) -> None:
    """The client's ``toolResponse``: each result goes to the turn waiting for it (BLOCKING) or is
    scheduled (NON_BLOCKING); one for a cancelled or dropped call is stale (module docstring);
    one for an id never issued, or under another function's name, closes the socket (1007)."""
    session = turns.session
    assert session is not None
    for resp in responses:
        call_id = resp.get("id")
        if call_id in session._stale_calls:  # answered after a drop or a cancellation: no effect
            session.tool_results.append({**resp, "t": time.monotonic(), "stale": True})
            continue
        if call_id not in session._calls:
            raise ProtocolViolation(f"{INVALID_ARGUMENT} tool_response for unknown function call id {call_id!r}")
        name, fut = session._calls[call_id]
        if resp.get("name") not in (None, name):
            raise ProtocolViolation(f"{INVALID_ARGUMENT} tool_response name {resp.get('name')!r} for {name!r}")
        session.tool_results.append({**resp, "t": time.monotonic()})
        if resp.get("willContinue"):
            continue  # an intermediate result of a NON_BLOCKING call
        del session._calls[call_id]
        if call_id in session._async_calls:  # the model did not wait
            session._async_calls.discard(call_id)
            await non_blocking_result(turns, name, resp)
        elif not fut.done():
            fut.set_result(resp.get("response") or {})


async def non_blocking_result(turns: Turns, name: str, response: dict[str, Any]) -> None:
    """A NON_BLOCKING call's final result lands: do what its ``scheduling`` says."""
    session = turns.session
    assert session is not None
    how = scheduling(response)
    # The guide puts ``scheduling`` inside ``response``: it is an instruction, not the result.
    result = {k: v for k, v in (response.get("response") or {}).items() if k != "scheduling"}
    if how == "SILENT":
        session.context_results.append((name, result))
        return
    if how == "INTERRUPT" and await turns.stop_turn():
        await turns.send({"serverContent": {"interrupted": True}})
        await turns.close_turn(interrupted=True)
    turns.answer_later(name, result)
