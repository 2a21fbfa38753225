"""What the web view tests share: an emulated model that keeps a call going, and signing in."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp

from tars.emulators.gemini.emulator import CallTool, Say


class Chatty:
    """Greets, asks for a tool no role grants (refused), and acknowledges what it hears."""

    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Hello, TARS here."), CallTool("open_the_pod_bay_doors", {})]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        return [Say(f"Noted: {text}")]

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        return []


def jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)  # the server is 127.0.0.1, an address, not a name


def hidden_csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(http: aiohttp.ClientSession, base: str, token: str, **headers: str) -> aiohttp.ClientResponse:
    """The sign-in form, filled in and sent, as a browser does."""
    async with http.get(f"{base}/signin") as r:
        assert r.status == 200
        nonce = hidden_csrf(await r.text())
    async with http.post(
        f"{base}/signin", data={"csrf": nonce, "token": token}, allow_redirects=False, headers=headers
    ) as r:
        await r.read()
        return r


async def csrf_of(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(f"{base}/") as r:
        assert r.status == 200
        return hidden_csrf(await r.text())


async def next_event(stream: aiohttp.ClientResponse) -> tuple[str, Any]:
    """The next server-sent event on ``stream``: (name, data)."""
    name, data = "message", []
    async for raw in stream.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                return name, json.loads("\n".join(data))
            continue
        field, _, value = line.partition(":")
        if field == "event":
            name = value.strip()
        elif field == "data":
            data.append(value.strip())
    raise ConnectionError("the event stream ended")
