"""Start-up reconciliation: calls a dead process left live are asked about at Twilio.

A server killed mid-call (``kill -9``, a power cut) never hears Twilio's final status
callback: it went to the dead process. Its call rows would stay ``ringing`` or
``in-progress`` forever. When a server starts, every such row that no live server holds
is looked up with Twilio's REST API (``GET /Calls/{sid}``) and finished with the status
Twilio reports and a reason saying what happened. A call Twilio still has up has no media
stream any more (nobody is listening): it is hung up and recorded ``failed``.

Which rows no live server holds: no heartbeat (``live_on``) and untouched for
``QUIET_FOR``, a heartbeat that has lapsed, or a heartbeat from a process on this machine
that no longer exists. Another server's live calls are never touched, nor a call being put
through (holding or in a conference, with no stream anywhere): its transfer's webhooks end it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from typing import Any

from tars.store.call_queue import FINAL
from tars.telephony.status import ours

log = logging.getLogger("tars.telephony")

#: A row with no heartbeat this old is not a call another server is just answering.
QUIET_FOR = dt.timedelta(seconds=60)
LIVE = ("ringing", "in-progress")


def _process_gone(server: str | None) -> bool:
    """True for a server id (``host:pid:tag``) of a process on this machine that has exited."""
    host, _, rest = (server or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def orphaned(session: Any, me: str, now: dt.datetime, lapsed_for: dt.timedelta | None = None) -> list[Any]:
    """The live rows no live server holds. With ``lapsed_for`` (the running reaper), only
    those whose heartbeat lapsed that long ago or whose process on this machine is gone: a
    call still ringing has no heartbeat yet, and only start-up may take such quiet rows."""
    from sqlmodel import col, select

    from tars.store.models import Call
    from tars.store.transfers import being_put_through

    # A call being put through has no stream on any server, and is not orphaned for that.
    query = select(Call).where(col(Call.status).in_(LIVE), col(Call.sid).is_not(None), ~being_put_through())
    rows = session.exec(query).all()
    found = []
    for call in rows:
        if call.live_on == me:
            continue
        lapsed = call.live_until is not None and call.live_until < now - (lapsed_for or dt.timedelta(0))
        quiet = lapsed_for is None and call.live_on is None and call.updated_at < now - QUIET_FOR
        if lapsed or quiet or _process_gone(call.live_on):
            found.append(call)
    session.commit()
    return found


def stranded(session: Any) -> list[Any]:
    """Calls being put through: live at Twilio without a stream, or ended with their last
    webhooks lost (no server was up to take them). Only Twilio can tell which; start-up asks it."""
    from sqlmodel import col, select

    from tars.store.models import Call
    from tars.store.transfers import being_put_through

    query = select(Call).where(
        col(Call.status).in_(LIVE),
        col(Call.sid).is_not(None),
        being_put_through(),
    )
    rows = list(session.exec(query).all())
    session.commit()
    return rows


def finish(session: Any, call_id: int, status: str, reason: str, ended: dt.datetime) -> None:
    """The row finished as Twilio saw the call end, with any transfer of it still open."""
    from sqlalchemy import update
    from sqlmodel import col

    from tars.store.models import Call
    from tars.store.transfers import end_open

    end_open(session, call_id, ended)
    session.execute(
        update(Call)
        .where(col(Call.id) == call_id, col(Call.status).in_(LIVE))
        .values(status=status, failure_reason=reason, ended_at=ended, live_on=None, live_until=None, updated_at=ended)
        .execution_options(synchronize_session=False)
    )
    session.commit()


ENDED_ORPHANED = "the server holding the call stopped; Twilio reports the call"
ENDED_PUT_THROUGH = "the call ended while being put through, with no server up to hear it; Twilio reports it"


async def reconcile(board: Any, lapsed_for: dt.timedelta | None = None) -> list[int]:
    """Finish the calls a dead process left live, as Twilio saw them; their ids. At start-up
    (``lapsed_for`` None) every orphan, and the calls being put through whose end no server
    heard (every server was down when Twilio reported it); while serving, the sessions lapsed
    ``lapsed_for`` ago. A call still live at Twilio is hung up if orphaned (nobody listens to
    it), and left alone if being put through (holding, ringing or in a conference: its
    transfer's webhooks end it)."""
    from tars.telephony.switchboard import wall

    now = wall()
    calls = [(call, False) for call in await board.db(lambda s: orphaned(s, board.id, now, lapsed_for))]
    if lapsed_for is None:
        calls += [(call, True) for call in await board.db(stranded)]
    done: list[int] = []
    for call, put_through in calls:
        try:
            remote = await asyncio.to_thread(lambda sid=call.sid: board.client.calls(sid).fetch())
        except Exception as exc:  # Twilio unreachable, or the call unknown to it: left for the reaper
            log.warning("call %s: could not ask Twilio how it ended (%s)", call.id, exc)
            continue
        status = ours(str(remote.status)) or "failed"
        ended = getattr(remote, "end_time", None) or now
        if status in FINAL:
            reason = f"{ENDED_PUT_THROUGH if put_through else ENDED_ORPHANED} {remote.status}"
        elif put_through:
            continue
        else:
            try:
                await asyncio.to_thread(lambda sid=call.sid: board.client.calls(sid).update(status="completed"))
            except Exception as exc:
                log.warning("call %s: could not hang up the orphaned call (%s)", call.id, exc)
            status, ended = "failed", now
            reason = "the server holding the call stopped mid-call; TARS hung up on restart"
        await board.db(lambda s, c=call.id, st=status, r=reason, e=ended: finish(s, c, st, r, e))
        log.warning("call %s (%s): %s", call.id, call.sid, reason)
        done.append(call.id)
    return done
