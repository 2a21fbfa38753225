"""The owner's live calls on this server: where reminders (and call-channel notices) are said
instead of ringing the owner, who is on the phone with TARS already."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tars.telephony.switchboard import Switchboard


def owner_sessions(board: Switchboard) -> list[Any]:
    """This server's live calls with the owner (inbound, after a PIN, or a reminder call)."""
    from tars.caller import OWNER

    return [
        session
        for session in list(board.sessions.values())
        if session.setup.caller.role == OWNER and not session.ending and not session.failure
    ]


def owner_session(board: Switchboard) -> Any | None:
    """The owner's live call the model can be told something on now, if any."""
    for session in owner_sessions(board):
        if session.worker is not None:
            return session
    return None


#: How long the model has to speak after being told something on a live call.
ANNOUNCE_SECONDS = 20.0
_turns: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


async def announce(session: Any, text: str, timeout: float = ANNOUNCE_SECONDS) -> bool:
    """Tell the model ``text`` on its live call and wait for its next finished turn (what it
    said about it). One announcement at a time per call, so two reminders due together are
    said one after the other rather than cutting each other off. False if the call ended, or
    the model said nothing within ``timeout``."""
    lock = _turns.setdefault(session, asyncio.Lock())
    async with lock:
        if session.ending or session.failure or session.worker is None:
            return False
        spoken = _assistant_turns(session)
        await session.say_to_model(text)
        deadline = asyncio.get_running_loop().time() + timeout
        while _assistant_turns(session) == spoken:
            if session.ending or session.failure or asyncio.get_running_loop().time() > deadline:
                return _assistant_turns(session) > spoken
            await asyncio.sleep(0.05)
        return True


def _assistant_turns(session: Any) -> int:
    return sum(1 for speaker, _ in session.recorder.lines if speaker == "assistant")
