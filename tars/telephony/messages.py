"""Messages between live calls and the owner, through the database (``CallMessage``).

    ask_owner        a goal call's question: said in the owner's live call if there is one
                     (on any server: the one holding it says it at the next pause), else
                     texted with a reply code; the asking call waits for the answer row
    answer_question  the owner's spoken answer, from their live call (the answer_question tool)
    sms_reply        the owner's text back: it answers the open question whose code it carries
                     (or the only open one, when it carries none)

Every question is stored before it is asked, so a restart or another process loses nothing;
the waiting call polls its row, so the answer may arrive through any server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from tars.delivery import DeliveryError
from tars.telephony.switchboard import Switchboard, wall

log = logging.getLogger("tars.messages")

#: How often a waiting question looks at its row.
ANSWER_POLL_SECONDS = 0.1
_CODE = re.compile(r"^\s*#?(\d{4})\b[\s:,.-]*(.*)$", re.S)


class QuestionError(Exception):
    """The question could not be asked or was not answered; the message is for the model."""


@dataclass(frozen=True)
class Asker:
    """Who is asking: the goal call (its row id) and the name of whom it is talking to."""

    call_id: int
    callee: str


def question_for_call(asker: Asker, question: str, code: str) -> str:
    return (
        f'[Question {code}] TARS, on the call with {asker.callee}, needs an answer: "{question}". '
        f"Ask the owner now, briefly; when they answer, use answer_question with code {code} and their words."
    )


def question_by_sms(asker: Asker, question: str, code: str) -> str:
    return f"TARS, on a call with {asker.callee}, asks: {question} — reply starting with {code}"


async def ask_owner(board: Switchboard, asker: Asker, question: str, timeout: float) -> str:
    """Ask the owner and wait up to ``timeout`` seconds for the answer."""
    from tars.store.call_messages import new_message, owner_live_call, set_status

    now = wall()
    expires = now + dt.timedelta(seconds=timeout)
    live = await board.db(lambda s: owner_live_call(s, now, excluding=asker.call_id))
    if live is not None:
        message = await board.db(
            lambda s: new_message(
                s, kind="question", text=question, from_call_id=asker.call_id, to_call_id=live.id,
                channel="call", expires_at=expires,
            )
        )  # fmt: skip
        log.info("question %s for the owner's live call %s", message.code, live.id)
    else:
        message = await board.db(
            lambda s: new_message(
                s, kind="question", text=question, from_call_id=asker.call_id, to_call_id=None,
                channel="sms", expires_at=expires, status="delivered",
            )
        )  # fmt: skip
        try:
            await board.outbox.send_sms(board.project.owner.phone, question_by_sms(asker, question, str(message.code)))
        except DeliveryError as exc:
            await board.db(lambda s: set_status(s, message.id, "failed"))
            raise QuestionError(f"could not reach {board.project.owner.name}: {exc}") from exc
    board.wake_scheduler()
    try:
        return await _answer_of(board, message.id, timeout)
    except asyncio.CancelledError:  # the asking call ended: an answer now would reach nobody
        await asyncio.shield(board.db(lambda s: set_status(s, message.id, "expired")))
        raise


async def _answer_of(board: Switchboard, message_id: int, timeout: float) -> str:
    from tars.store.call_messages import get_message, set_status

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await board.db(lambda s: get_message(s, message_id))
        if row is not None and row.status == "answered":
            return str(row.answer or "")
        if row is None or row.status in ("failed", "expired"):
            break
        if asyncio.get_running_loop().time() >= deadline:
            await board.db(lambda s: set_status(s, message_id, "expired"))
            row = await board.db(lambda s: get_message(s, message_id))
            if row is not None and row.status == "answered":  # answered as it expired
                return str(row.answer or "")
            break
        await asyncio.sleep(ANSWER_POLL_SECONDS)
    raise QuestionError(f"{board.project.owner.name} did not answer in time; say you will confirm later")


async def tell_owner(board: Switchboard, asker: Asker, note: str) -> dict[str, Any]:
    """A one-way note for the owner ("the dentist is running late"): said in their live call
    if there is one (on whichever server holds it), else texted."""
    from tars.store.call_messages import new_message, owner_live_call

    live = await board.db(lambda s: owner_live_call(s, wall(), excluding=asker.call_id))
    if live is not None:
        await board.db(
            lambda s: new_message(
                s, kind="note", text=f"From the call with {asker.callee}: {note}", from_call_id=asker.call_id,
                to_call_id=live.id, channel="call",
            )
        )  # fmt: skip
        board.wake_scheduler()
        return {"told": True, "how": "in their live call, at the next pause"}
    text = f"TARS, on a call with {asker.callee}: {note}"
    await board.db(
        lambda s: new_message(
            s, kind="note", text=text, from_call_id=asker.call_id, to_call_id=None, channel="sms", status="delivered"
        )
    )
    try:
        await board.outbox.send_sms(board.project.owner.phone, text)
    except DeliveryError as exc:
        raise QuestionError(f"could not reach {board.project.owner.name}: {exc}") from exc
    return {"told": True, "how": "by text message"}


async def answer_question(board: Switchboard, owner_call_id: int, code: str, text: str) -> dict[str, Any]:
    """The owner answered, in their live call, the question said there under ``code``."""
    from tars.store.call_messages import answer, open_questions

    wanted = code.strip().lstrip("#")
    waiting = await board.db(lambda s: open_questions(s, to_call_id=owner_call_id))
    match = next((q for q in waiting if q.code == wanted), None)
    if match is None:
        codes = ", ".join(str(q.code) for q in waiting) or "none"
        raise QuestionError(f"no open question has the code {wanted!r} on this call (open: {codes})")
    if not await board.db(lambda s: answer(s, match.id, text)):
        raise QuestionError("that question has already been answered or has expired")
    return {"answered": True, "code": wanted}


async def questions_open_by_sms(board: Switchboard) -> bool:
    """Whether a question TARS texted the owner is still waiting (a text from them answers it)."""
    from tars.store.call_messages import open_questions

    return bool(await board.db(lambda s: open_questions(s, channel="sms")))


async def sms_reply(board: Switchboard, body: str) -> str | None:
    """The owner texted TARS: the answer to the question whose code the text starts with. Returns
    what to text back, or None when the reply answered a question."""
    from tars.store.call_messages import answer, open_questions

    waiting = await board.db(lambda s: open_questions(s, channel="sms"))
    found = _CODE.match(body)
    if found:
        code, text = found.group(1), found.group(2).strip()
        match = next((q for q in waiting if q.code == code), None)
        if match is None:
            return f"No open question has the code {code}. Nothing was answered."
    elif len(waiting) == 1:
        match, text = waiting[0], body.strip()
    elif waiting:
        codes = ", ".join(str(q.code) for q in waiting)
        return f"Several questions are open ({codes}): start your reply with the code of the one you answer."
    else:
        return None  # nothing open: not an answer
    if not text:
        return f"Your reply to {match.code} was empty: send the code and then your answer."
    if await board.db(lambda s: answer(s, match.id, text)):
        log.info("the owner answered question %s by SMS", match.code)
        return None
    return f"Question {match.code} was already answered or has expired."
