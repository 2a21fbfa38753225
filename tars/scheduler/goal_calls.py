"""Goal calls the scheduler places: those scheduled for later, and retries after busy, no
answer or voicemail.

**Retries.** A goal call that ended ``busy``, ``no-answer`` or ``voicemail`` (a machine
answered; its message, if any, was left) is retried per its playbook's ``busy``,
``no_answer`` or ``voicemail`` policy: up to ``retries`` attempts after the first, counting
every earlier retry of the call whatever ended it, the first ``backoff_minutes`` after the
failure, doubling each time; moved to the next opening of the playbook's calling window
when it would fall outside it. The retry is a new Call row (``attempt`` + 1, ``retry_of``)
scheduled for that time; the decision is recorded once on the ended call (``follow_up``),
whichever server makes it. ``voicemail`` retries nothing unless the playbook says
``retries``, nor a voicemail call that ended more than ``STALE_VOICEMAIL`` before its
decision (one from before TARS retried voicemail); failed calls are not retried.

**Scheduled calls** (a retry, or a call asked for ``at`` a time) are claimed under a lease
when due and placed with ``place_goal_call(…, call_id=…)``. One that falls due outside its
calling window waits for the window to open.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tars.scheduler.jobs import Runner

log = logging.getLogger("tars.scheduler")

#: A voicemail call over this long before its retry is decided is not retried: it ended
#: before TARS retried voicemail calls (or while no server ran for as long).
STALE_VOICEMAIL = dt.timedelta(days=1)


def retry_time(scheduler: Runner, call: Any, now: dt.datetime) -> dt.datetime | None:
    """When the next attempt of ``call`` goes out, or None if its policy has no attempt left."""
    from tars.scheduler.window import next_open

    project = scheduler.board.project
    book = project.playbooks.get(call.playbook or "")
    if book is None:
        return None
    policy = {"busy": book.busy, "voicemail": book.voicemail_retry}.get(call.status, book.no_answer)
    if call.status == "voicemail" and _ended_long_ago(call):
        return None
    done = call.attempt - 1  # retries already made
    if done >= policy.retries:
        return None
    wait = dt.timedelta(minutes=policy.backoff_minutes * 2**done)
    return next_open(project, book.name, call.to_number, now + wait)


def _ended_long_ago(call: Any) -> bool:
    """Measured on the wall clock, as the call's own times are stamped."""
    ended = call.ended_at or call.updated_at
    return ended is not None and dt.datetime.now(dt.UTC) - ended > STALE_VOICEMAIL


async def schedule_retries(scheduler: Runner) -> None:
    """Decide, once, the next attempt of every goal call that ended busy, unanswered or on voicemail."""
    from tars.store.call_queue import calls_to_follow_up, no_retry, schedule_retry

    board = scheduler.board
    for call in await board.db(calls_to_follow_up):
        at = retry_time(scheduler, call, scheduler.now())
        if at is None:
            await board.db(lambda s, call_id=call.id: no_retry(s, call_id))
            log.info("goal call %s ended %s; no retries left", call.id, call.status)
            continue
        retry = await board.db(lambda s, call=call, at=at: schedule_retry(s, call, at))
        if retry is not None:
            log.info(
                "goal call %s ended %s: attempt %d scheduled for %s (call %s)",
                call.id,
                call.status,
                retry.attempt,
                at.isoformat(timespec="minutes"),
                retry.id,
            )


async def place_due_calls(scheduler: Runner) -> None:
    """Place every scheduled goal call that is due and inside its calling window."""
    from tars.scheduler.window import next_open
    from tars.store.call_queue import claim_due_calls, release_call

    board = scheduler.board
    token = scheduler.token()
    now = scheduler.now()
    claimed = await board.db(lambda s: claim_due_calls(s, now, token, scheduler.lease_seconds, limit=5))
    for call in claimed:
        opens = next_open(board.project, call.playbook or "", call.to_number, now) if call.playbook else now
        if opens > now:
            await board.db(lambda s, call_id=call.id, opens=opens: release_call(s, call_id, token, scheduled_at=opens))
            log.info("goal call %s waits for its calling window (%s)", call.id, opens.isoformat(timespec="minutes"))
            continue
        try:
            await _place(scheduler, call)
        finally:
            await board.db(lambda s, call_id=call.id: release_call(s, call_id, token))


async def _place(scheduler: Runner, call: Any) -> None:
    from tars.graph.call_plan import InputError
    from tars.store.calls import update_call
    from tars.telephony.switchboard import PlacementError

    board = scheduler.board
    inputs = dict(call.inputs or {})
    callee = call.callee or call.to_number
    try:
        await board.place_goal_call(
            number=call.to_number,
            playbook=str(call.playbook),
            inputs=inputs,
            callee=callee,
            contact_id=call.contact_id,
            call_id=call.id,
        )
        log.info("scheduled goal call %s (attempt %d) placed to %s", call.id, call.attempt, callee)
    except PlacementError as exc:  # the row is already failed with the reason
        log.warning("scheduled goal call %s could not be placed: %s", call.id, exc)
    except (KeyError, InputError) as exc:
        reason = f"could not be placed: {exc.args[0] if isinstance(exc, KeyError) else exc}"
        await board.db(lambda s: update_call(s, call.id, status="failed", failure_reason=reason))
        log.warning("scheduled goal call %s %s", call.id, reason)
