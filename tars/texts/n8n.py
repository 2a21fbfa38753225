"""Tasks from n8n: ``POST /hooks/n8n``, checked before anything runs, and the signed result
posted back when the session ends.

A task is JSON ``{"message": "…", "reply_to": "https://…"?, "id": "…"?}`` with the headers

    X-TARS-Timestamp   Unix seconds when n8n signed it; refused outside ``n8n.max_age_seconds``
    X-TARS-Signature   ``sha256=`` + hex HMAC-SHA256(n8n.secret, "{timestamp}.{body}")
    X-TARS-Request-Id  the request's id (or ``id`` in the body): each is accepted once

The same scheme signs what TARS sends to webhooks (``tars.tools.webhook``), so one n8n
"Crypto" node checks both directions. Every refusal is one line (401 for who-are-you
problems: secret, signature, time, replay; 400 for a body that is not a task), logged,
and nothing else is stored or run. A replay is caught by the request id and by the
signature itself (a captured request re-sent under a new id header has the same MAC).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from tars.project import Project, Webhook
from tars.tools.webhook import send, signature

log = logging.getLogger("tars.hooks")

TIMESTAMP, SIGNATURE, REQUEST_ID = "X-TARS-Timestamp", "X-TARS-Signature", "X-TARS-Request-Id"
FIELDS = ("message", "reply_to", "id")
MAX_MESSAGE_CHARS = 4000


@dataclass(frozen=True)
class Task:
    message: str
    reply_to: str | None
    request_id: str
    mac: str


class Refused(Exception):
    """The request is refused: ``status`` (401/400) and the one-line ``reason``."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def settings(project: Project) -> Mapping[str, Any]:
    return project.section("n8n")


def check(project: Project, headers: Mapping[str, str], body: bytes, now: float | None = None) -> Task:
    """The task in a signed request, or ``Refused`` saying what is wrong (nothing is stored)."""
    conf = settings(project)
    secret = str(conf.get("secret") or "")
    if not secret:
        raise Refused(401, "n8n tasks are refused: n8n.secret is not set in tars.yaml (N8N_HOOK_SECRET)")
    stamp = headers.get(TIMESTAMP, "")
    if not stamp.isdigit():
        raise Refused(401, f"missing or malformed {TIMESTAMP} (Unix seconds)")
    window = int(conf.get("max_age_seconds", 300))
    if abs((now if now is not None else time.time()) - int(stamp)) > window:
        raise Refused(401, f"{TIMESTAMP} is more than {window} s from now: sign the request again")
    given = headers.get(SIGNATURE, "")
    if not given:
        raise Refused(401, f"missing {SIGNATURE}")
    if not hmac.compare_digest(signature(secret, stamp, body), given):
        raise Refused(401, f"bad signature: {SIGNATURE} must be sha256=HMAC-SHA256(secret, '{{timestamp}}.{{body}}')")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"the body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise Refused(400, 'the body must be a JSON object: {"message": "…", "reply_to": "…"}')
    extra = sorted(set(data) - set(FIELDS))
    if extra:
        raise Refused(400, f"unknown field {extra[0]!r}: a task has message, reply_to and id")
    message = data.get("message")
    if not isinstance(message, str) or not message.strip():
        raise Refused(400, "message is missing or empty: say what TARS should do")
    if len(message) > MAX_MESSAGE_CHARS:
        raise Refused(400, f"message is longer than {MAX_MESSAGE_CHARS} characters")
    reply_to = data.get("reply_to")
    if reply_to is not None and (not isinstance(reply_to, str) or not _http_url(reply_to)):
        raise Refused(400, "reply_to must be an http(s) URL")
    request_id = data.get("id") if data.get("id") is not None else headers.get(REQUEST_ID, "")
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > 100:
        raise Refused(400, f"missing request id: send {REQUEST_ID} (at most 100 characters) or 'id' in the body")
    return Task(message.strip(), reply_to or _default_reply_to(conf), request_id.strip(), given)


def expiry(project: Project) -> dt.datetime:
    """Until when a request id must be remembered: past it, its timestamp is refused anyway."""
    window = int(settings(project).get("max_age_seconds", 300))
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2 * window)


def _http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _default_reply_to(conf: Mapping[str, Any]) -> str | None:
    value = conf.get("reply_to")
    return str(value) if value else None


async def post_result(project: Project, url: str, result: Mapping[str, Any]) -> None:
    """The session's result, signed like the task was, to ``url`` (retried; logged if it fails)."""
    secret = str(settings(project).get("secret") or "")
    hook = Webhook(url=url, secret=secret or None, timeout_seconds=10, retries=2,
                   headers={REQUEST_ID: f"tars-result-{result.get('session_id')}"})  # fmt: skip
    try:
        await send(hook, dict(result))
        log.info("the result of text session %s was posted to %s", result.get("session_id"), url)
    except Exception as exc:
        log.warning("the result of text session %s could not be posted: %s", result.get("session_id"), exc)
