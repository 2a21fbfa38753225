"""How things reach the owner: one way for messages, notifications, reports and reminders.

Channels (from tars.yaml ``delivery``, per kind of thing):

* ``sms``     — Twilio Messages from the TARS number to the owner's phone;
* ``call``    — a Twilio call to the owner that speaks the text (``<Say>``);
* ``webhook`` — a signed JSON POST to ``delivery.webhook`` (an n8n workflow, say).

Every send returns "delivered" or raises ``DeliveryError`` saying what went wrong.

If the owner is on a live call with TARS, a ``call`` delivery is said in that call instead
of ringing them (their line is busy anyway): the scheduler sets ``live_owner``. Reminders go
through the scheduler (``tars.scheduler.reminders``), which uses the same channels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from tars.endpoints import Endpoints
from tars.project import Project, Webhook

log = logging.getLogger("tars.delivery")


class DeliveryError(Exception):
    """A delivery failed; the message says through which channel and why."""


class Outbox:
    """Sends on behalf of the server (and the tools)."""

    def __init__(self, project: Project, endpoints: Endpoints):
        self.project = project
        self.endpoints = endpoints
        self._client: Any = None
        self._session: Any = None  # aiohttp.ClientSession for webhook deliveries
        #: The owner's live call on this server, if any (a CallSession with ``say_to_model``).
        self.live_owner: Callable[[], Any] | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.endpoints.twilio_client()
        return self._client

    def channel_for(self, kind: str) -> str:
        delivery = self.project.section("delivery")
        return str(delivery.get(kind) or "sms")

    async def notify_owner(self, text: str, *, kind: str) -> str:
        """Tell the owner ``text`` through the channel configured for ``kind``; never raises."""
        channel = self.channel_for(kind)
        try:
            await self.deliver(channel, text, {"kind": kind})
        except DeliveryError as exc:
            log.warning("could not notify the owner (%s): %s", kind, exc)
            return f"failed: {exc}"
        return "delivered"

    async def deliver(self, channel: str, text: str, extra: Mapping[str, Any] | None = None) -> str:
        if channel == "sms":
            return await self.send_sms(self.project.owner.phone, text)
        if channel == "call":
            live = self.live_owner() if self.live_owner is not None else None
            if live is not None:
                await live.say_to_model(f"[Notice] Tell {self.project.owner.name} at the next pause: {text}")
                return "announced"
            return await self.say_by_call(self.project.owner.phone, text)
        if channel == "webhook":
            return await self.post_webhook({"text": text, **(extra or {})})
        raise DeliveryError(f"unknown delivery channel {channel!r}")

    async def send_sms(self, to: str, body: str) -> str:
        number = self.project.section("telephony").get("number")

        def send() -> str:
            return self.client.messages.create(to=to, from_=number, body=body[:1600]).sid

        return await self._twilio(send, f"SMS to {to}")

    async def say_by_call(self, to: str, text: str) -> str:
        number = self.project.section("telephony").get("number")
        twiml = f'<Response><Pause length="1"/><Say>{escape(text)}</Say></Response>'

        def call() -> str:
            return self.client.calls.create(to=to, from_=number, twiml=twiml).sid

        return await self._twilio(call, f"call to {to}")

    async def post_webhook(self, payload: Mapping[str, Any]) -> str:
        """A signed JSON POST to ``delivery.webhook`` (``tars.tools.webhook.send``: signed,
        retried), over one reused HTTP client."""
        from tars.tools.webhook import WebhookError, send

        config = self.project.section("delivery").get("webhook")
        if not config:
            raise DeliveryError("delivery.webhook is not configured in tars.yaml")
        hook = Webhook(
            config["url"],
            config.get("method", "POST"),
            config.get("secret") or None,
            config.get("headers", {}),
            config.get("timeout_seconds", 10),
            config.get("retries", 2),
        )
        try:
            await send(hook, payload, session=await self._http())
        except WebhookError as exc:
            raise DeliveryError(str(exc)) from exc
        return "posted"

    async def _http(self) -> Any:
        """One HTTP client for every webhook delivery (connections are reused: a burst of
        reminders is a burst of requests to the same endpoint)."""
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def _twilio(self, work: Any, what: str) -> str:
        from twilio.base.exceptions import TwilioException

        try:
            return str(await asyncio.to_thread(work))
        except TwilioException as exc:
            raise DeliveryError(f"Twilio refused the {what}: {exc}") from exc
        except OSError as exc:
            raise DeliveryError(f"could not reach Twilio for the {what}: {exc}") from exc
