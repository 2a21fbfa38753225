"""Webhook tools and webhook deliveries: signed JSON over HTTP, with a timeout and retries.

Every request carries ``X-TARS-Timestamp`` (Unix seconds) and ``X-TARS-Signature:
sha256=<hex HMAC-SHA256 of "{timestamp}.{body}" keyed by the secret>``, so the receiver
(an n8n workflow, say) can check it came from this TARS and is fresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tars import metrics
from tars.project import Tool, Webhook

if TYPE_CHECKING:
    import aiohttp

USER_AGENT = "TARS-webhook/1"


class WebhookError(Exception):
    """The endpoint could not be reached or kept failing; the message says how."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, given: str, tolerance: float = 300, now: float | None = None
) -> bool:
    """The receiving side's check (also what the tests use)."""
    try:
        fresh = abs((now or time.time()) - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), given)


async def send(hook: Webhook, payload: Mapping[str, Any], *, session: aiohttp.ClientSession | None = None) -> Any:
    """POST (or the configured method) ``payload`` as signed JSON; retry transient failures.

    ``session``: an HTTP client to reuse (its connections are pooled); by default, a new
    one for this send."""
    import aiohttp

    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    timeout = aiohttp.ClientTimeout(total=hook.timeout_seconds)
    attempts = 1 + hook.retries
    last = ""
    async with contextlib.AsyncExitStack() as stack:
        http = session if session is not None else await stack.enter_async_context(aiohttp.ClientSession())
        for attempt in range(attempts):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "X-TARS-Timestamp": timestamp,
                **dict(hook.headers),
            }
            if hook.secret:
                headers["X-TARS-Signature"] = signature(hook.secret, timestamp, body)
            data = body if hook.method != "GET" else None
            try:
                async with http.request(hook.method, hook.url, data=data, headers=headers, timeout=timeout) as response:
                    text = await response.text()
                    if response.status < 300:
                        try:
                            return json.loads(text) if text.strip() else {"status": response.status}
                        except json.JSONDecodeError:
                            return {"status": response.status, "body": text[:2000]}
                    last = f"HTTP {response.status}: {text[:200]}"
                    if 400 <= response.status < 500 and response.status not in (408, 429):
                        break  # the request is wrong; retrying will not help
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt + 1 < attempts:
                await asyncio.sleep(min(0.5 * 2**attempt, 5))
    metrics.WEBHOOK_FAILURES.inc()
    raise WebhookError(f"{hook.url} failed after {attempt + 1} attempt(s): {last}")


async def call_webhook(
    tool: Tool, arguments: dict[str, Any], upstream: Mapping[str, Any], caller: Any
) -> dict[str, Any]:
    """Run a declared webhook tool: the model's arguments (and needed outputs) as JSON."""
    assert tool.webhook is not None
    payload = {
        "tool": tool.name,
        "arguments": arguments,
        "upstream": dict(upstream),
        "caller": {"number": getattr(caller, "number", None), "role": getattr(caller, "role", None)},
    }
    result = await send(tool.webhook, payload)
    return result if isinstance(result, dict) else {"result": result}
