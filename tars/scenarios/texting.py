"""``tars send --simulate``: one text session for the owner, run here against the emulators.

The text model is the Gemini emulator's REST side (its default text agent, ``text_agent``);
the Twilio emulator stands in for any text a tool sends; the store is the project's own, so
"what reminders do I have?" is answered from the owner's real reminders and a reminder made
by text is one ``tars serve`` will deliver. The session is recorded like any other (a call
of kind ``text``, channel ``cli``) and closes once it has answered: `tars calls list --kind
text` shows it. Placing a call is what the simulation does not do: without ``--simulate``,
`tars send` goes to the running `tars serve`, which places it (``POST /api/texts``).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from tars.caller import OWNER, Caller
from tars.calls.text_session import Exchange, TextSession, TextSetup, text_instruction, text_tools
from tars.delivery import Outbox
from tars.emulators.gemini.emulator import GeminiEmulator
from tars.emulators.twilio.emulator import TwilioEmulator
from tars.endpoints import Endpoints
from tars.project import Project
from tars.scenarios.line import ACCOUNT, API_KEY, TOKEN


@dataclass
class Sent:
    """What came of one ``tars send``."""

    session_id: int
    exchange: Exchange
    texts: list[dict[str, str]] = field(default_factory=list)  # SMS the tools sent: {"to", "body"}

    def to_json(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "message": self.exchange.text, "answer": self.exchange.answer,
                "tools": self.exchange.tools, "texts": self.texts}  # fmt: skip


async def send_locally(project: Project, text: str) -> Sent:
    """``text`` from the owner, answered by a text session on this machine."""
    from tars.store.calls import start_call
    from tars.store.database import connect
    from tars.telephony.switchboard import wall

    caller = Caller(project.owner.phone, OWNER, project.owner.name)
    tools = text_tools(project, OWNER)
    async with (
        GeminiEmulator(api_key=API_KEY) as gemini,
        TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False) as twilio,
    ):
        endpoints = Endpoints(
            twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN, twilio_api_base_url=twilio.base_url,
            gemini_api_key=API_KEY, gemini_base_url=gemini.base_url,
            gemini_ssl=ssl.create_default_context(cafile=gemini.ca_file),
        )  # fmt: skip
        with connect(project.database_url) as database:
            now = wall()
            row = await database.run(
                lambda s: start_call(
                    s, direction="inbound", from_number=caller.number, to_number="cli", status="in-progress",
                    started_at=now, callee=caller.name, role=OWNER, kind="text",
                )
            )  # fmt: skip
            setup = TextSetup(row.id, caller, "cli", text_instruction(project, caller, "cli", tools), tools)
            session = TextSession(project, endpoints, database, Outbox(project, endpoints), setup)
            await session.send(text)
            await session.close()
        sent = [{"to": m.to, "body": m.body} for m in twilio.messages]
    return Sent(row.id, session.exchanges[-1], sent)
