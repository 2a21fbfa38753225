"""Webhook tools and deliveries: signed JSON to a real local HTTP endpoint, with retries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from tars.project import Webhook
from tars.tools.webhook import WebhookError, send, verify


class Endpoint:
    """A tiny n8n stand-in on 127.0.0.1 that checks what it receives."""

    def __init__(self, statuses: list[int]):
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"sent": True}, status=status)

    async def __aenter__(self) -> Endpoint:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_signed_post_the_receiver_can_verify() -> None:
    async with Endpoint([]) as endpoint:
        result = await send(Webhook(endpoint.url, secret="s3cret-value"), {"text": "hello"})
    assert result == {"sent": True}
    [(headers, body)] = endpoint.requests
    assert json.loads(body) == {"text": "hello"}
    assert verify("s3cret-value", headers["X-TARS-Timestamp"], body, headers["X-TARS-Signature"])
    assert not verify("wrong-secret", headers["X-TARS-Timestamp"], body, headers["X-TARS-Signature"])
    assert not verify("s3cret-value", headers["X-TARS-Timestamp"], body + b" ", headers["X-TARS-Signature"])


async def test_transient_failures_are_retried_then_reported() -> None:
    async with Endpoint([503, 200]) as endpoint:
        assert await send(Webhook(endpoint.url, retries=2), {"n": 1}) == {"sent": True}
        assert len(endpoint.requests) == 2
    async with Endpoint([500, 500, 500]) as endpoint:
        with pytest.raises(WebhookError, match=r"failed after 3 attempt\(s\): HTTP 500"):
            await send(Webhook(endpoint.url, retries=2), {"n": 1})


async def test_a_client_error_is_not_retried() -> None:
    async with Endpoint([404]) as endpoint:
        with pytest.raises(WebhookError, match="HTTP 404"):
            await send(Webhook(endpoint.url, retries=3), {"n": 1})
        assert len(endpoint.requests) == 1


async def test_an_unreachable_endpoint_is_a_clear_error() -> None:
    with pytest.raises(WebhookError, match=r"127\.0\.0\.1:9/hook failed after 1 attempt"):
        await send(Webhook("http://127.0.0.1:9/hook", retries=0, timeout_seconds=2), {})
