"""Refused inbound requests as security events: a forged Twilio webhook, a media stream with
bad or used signed parameters, PIN entry locked, a wrong local API token.

Each is logged at warning (what was refused, why, from where: never the signature, token or
PIN presented), stored (``tars.store.security_events``; ``tars security`` lists them) and told
to the owner through ``delivery.security`` (SMS by default), at most once per kind an hour,
however many servers share the database: a flood of forged requests is one message, not a
flood of texts. What goes into the message is TARS's own wording plus the client address or
a number from a signed webhook, never a field of a request that failed its signature.
"""

from __future__ import annotations

import logging
from typing import Any

from tars import metrics

log = logging.getLogger("tars.security")

SIGNATURE = "twilio_signature"
STREAM = "stream_token"
PIN_LOCKOUT = "pin_lockout"
API_TOKEN = "api_token"

#: Each kind as the ``reason`` of ``tars_webhooks_refused_total`` (docs/metrics.md).
REASONS = {SIGNATURE: "signature", STREAM: "stream parameters", PIN_LOCKOUT: "pin lockout", API_TOKEN: "token"}

AFTER = "Further refusals of this kind within the hour are recorded, not texted: `tars security` lists them."


async def refused(board: Any, kind: str, detail: str, source: str | None = None, *, route: str) -> None:
    """Record one refused request to ``route`` (counted in the metrics too), and tell the owner if
    none of its kind was told this hour. Never raises: a refusal stands whatever the database or
    the delivery channel does."""
    from tars.store.security_events import claim_alert, record

    metrics.WEBHOOKS_REFUSED.labels(route, REASONS[kind]).inc()
    where = f" (from {source})" if source else ""
    log.warning("security: refused %s%s [%s]", detail, where, kind)
    try:
        await board.db(lambda s: record(s, kind, detail, source))
        tell = await board.db(lambda s: claim_alert(s, kind))
    except Exception as exc:  # the request is refused all the same
        log.warning("could not record a security event: %s", exc)
        return
    if tell:
        text = f"Security: {detail}{where}. {AFTER}"
        board.background(board.outbox.notify_owner(text, kind="security"))


def client_of(request: Any) -> str | None:
    """The address a request came from (the proxy's, behind one)."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None)
