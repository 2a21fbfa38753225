"""The owner takes over a live goal call (``tars calls join N``): the other party holds in a
conference while TARS rings the owner with a brief; the owner's yes joins them and the
playbook run ends with the outcome ``taken_over`` (the transcript so far stays on the call).
If the owner does not take it, the call goes back to TARS at the playbook step it was on
(the run, with its model session, stored as the stream ended: ``transfers.going_on``).

The same machinery as a warm transfer (``tars.telephony.transfers``): a CallTransfer row of
kind ``join``, the same webhooks.
"""

from __future__ import annotations

import logging
from typing import Any

from tars.telephony.switchboard import LineError, Switchboard
from tars.telephony.transfers import not_moved, ring_into_conference

log = logging.getLogger("tars.transfers")

RING_SECONDS = 25


async def join(board: Switchboard, call_id: int) -> dict[str, Any]:
    """Ring the owner into live goal call ``call_id``. Raises ``LineError`` with a sentence
    saying why not (not a goal call, not live, Twilio refusing)."""
    from tars.store.calls import add_line, get_call
    from tars.store.transfers import mark_moving, settle, start_transfer, under_way

    call = await board.db(lambda s: get_call(s, call_id))
    if not call.playbook:
        raise LineError(f"call {call_id} is not a goal call; only a goal call TARS is making can be taken over")
    if call.status != "in-progress" or not call.sid:
        raise LineError(f"call {call_id} is {call.status}, not live; see `tars sessions` for the live calls")
    if await board.db(lambda s: under_way(s, call_id)):
        raise LineError(f"call {call_id} is being put through already; see `tars calls show {call_id}`")
    owner = board.project.owner
    callee = call.callee or call.to_number
    brief = f"Your call with {callee} about {call.playbook.replace('_', ' ')}. Press 1 or say yes to join it."
    transfer = await board.db(
        lambda s: start_transfer(
            s, call_id, kind="join", target="owner", target_name=owner.name, number=owner.phone,
            requested_by=owner.name, about=f"taking over the call with {callee}", brief=brief,
        )
    )  # fmt: skip
    session = board.session_for(call_id)
    joining = f"{owner.name} is joining the call to take it over"
    if session is not None:  # this server holds the stream: it ends without wrapping up
        session.handing_over = True
        await session.recorder.line("system", joining)
    else:  # another server does: its stream ends finding the transfer under way (transfers.going_on)
        await board.db(lambda s: add_line(s, call_id, "system", joining))
    await board.db(lambda s: mark_moving(s, call_id))  # its run stored as its stream ends, on any server
    try:
        await ring_into_conference(board, transfer.id, call.sid, owner.phone, RING_SECONDS)
    except Exception as exc:
        why = f"Twilio: {exc}"
        await board.db(lambda s: settle(s, transfer.id, "failed", reason=why))
        await not_moved(board, transfer.id, call_id)  # back to TARS at its step, from holding
        raise LineError(f"could not bring you into call {call_id}: {exc}") from exc
    log.info("call %s: ringing the owner to take it over", call_id)
    return {"call_id": call_id, "transfer_id": transfer.id, "ringing": owner.phone, "callee": callee}
