"""Each tick, for the live calls this server holds: their session heartbeat in the database,
the messages waiting for them (questions, notes and reports, said at the next pause), and
the sessions of servers that died (reaped: the call is finished with the reason).

The heartbeat is on the wall clock (it says which process is alive), not the scheduler's
clock (which tests move to try calling windows).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from tars.scheduler.live import announce
from tars.telephony.messages import Asker, question_for_call
from tars.telephony.reconcile import reconcile
from tars.telephony.switchboard import wall

if TYPE_CHECKING:
    from tars.scheduler.jobs import Runner

log = logging.getLogger("tars.scheduler")

#: A live session whose heartbeat lapsed this long ago belongs to a server that died.
REAP_AFTER = dt.timedelta(seconds=30)


def local_sessions(scheduler: Runner) -> dict[int, Any]:
    """This server's live calls that can be spoken to, by call id."""
    return {
        s.setup.call_id: s
        for s in list(scheduler.board.sessions.values())
        if not s.ending and not s.failure and s.worker is not None
    }


async def deliver_messages(scheduler: Runner) -> None:
    """Say every message waiting for a live call this server holds (each taken once)."""
    from tars.store.call_messages import pending_for, set_status

    board = scheduler.board
    local = local_sessions(scheduler)
    if not local:
        return
    for message in await board.db(lambda s: pending_for(s, local)):
        taken = await board.db(lambda s, m=message: set_status(s, m.id, "delivered", only_if=("pending",)))
        if taken:
            board.background(_say(scheduler, local[int(message.to_call_id)], message))


async def _say(scheduler: Runner, session: Any, message: Any) -> None:
    from tars.store.calls import get_call

    board = scheduler.board
    owner = board.project.owner.name
    if message.kind == "question":
        asking = await board.db(lambda s: get_call(s, int(message.from_call_id)))
        text = question_for_call(Asker(asking.id, asking.callee or asking.to_number), message.text, message.code)
    elif message.kind == "report":
        text = f"[Report] A call TARS made for {owner} has finished. Tell them at the next pause: {message.text}"
    else:
        text = f"[Note] Tell {owner} at the next pause: {message.text}"
    if not await announce(session, text):
        log.warning("message %s could not be said in call %s", message.id, session.setup.call_id)


async def reap(scheduler: Runner) -> None:
    """Finish the calls of servers that died: as Twilio reports them (``reconcile``), and
    those Twilio cannot tell of (no call sid, Twilio unreachable) as failed."""
    from tars.store.call_queue import reap_lapsed

    await reconcile(scheduler.board, lapsed_for=REAP_AFTER)
    reaped = await scheduler.board.db(lambda s: reap_lapsed(s, wall(), REAP_AFTER))
    for call_id in reaped:
        log.warning("call %s: its server stopped; the call is finished as failed", call_id)
