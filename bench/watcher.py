"""Someone watching `tars serve` while it takes calls: the ``tars-watched`` variant.

What a person with the web view open does, over HTTP as their browser would: sign in with the
API token (the sign-in form's nonce, then the session cookie), keep the front page's event
stream of live calls open, and open each live call's own event stream (its transcript as it is
spoken) until that call ends; and what a Prometheus does: scrape ``/metrics`` every second.
The latency of calls taken while this runs, beside the same server unwatched, is what the web
view and the metrics cost the call path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from typing import Any

import aiohttp

SCRAPE_SECONDS = 1.0


class Watcher:
    def __init__(self, base_url: str, token_file: Path):
        self.base_url = base_url
        self.token_file = token_file
        self.events = 0  # server-sent events read, over every stream
        self.scrapes = 0
        self.calls_watched: set[int] = set()
        self.errors: list[str] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Watcher:
        token = self.token_file.read_text().strip()
        # The session cookie comes from 127.0.0.1 over http: a browser keeps it; aiohttp needs unsafe=True.
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), trust_env=False)
        async with self._http.get(f"{self.base_url}/signin") as form:
            page = await form.text()
        nonce = re.search(r'name="csrf" value="([^"]+)"', page)
        assert nonce, "the sign-in form carries its nonce"
        async with self._http.post(
            f"{self.base_url}/signin", data={"token": token, "csrf": nonce[1]}, allow_redirects=False
        ) as signed:
            assert signed.status in (302, 303), f"sign-in answered {signed.status}"
        self._spawn(self._front_page())
        self._spawn(self._scrape(token))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _events(self, path: str) -> Any:
        """Each event's (name, data) from one server-sent event stream, until it closes."""
        assert self._http is not None
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._http.get(f"{self.base_url}{path}", timeout=timeout) as response:
            if response.status != 200:
                self.errors.append(f"{path}: HTTP {response.status}")
                return
            name, data = "message", []
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if not line:
                    if data:
                        self.events += 1
                        yield name, json.loads("\n".join(data))
                    name, data = "message", []
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])

    async def _front_page(self) -> None:
        async for name, live in self._events("/events"):
            if name != "live":
                continue
            for row in live:
                call_id = int(row["id"])
                if call_id not in self.calls_watched:
                    self.calls_watched.add(call_id)
                    self._spawn(self._call_page(call_id))

    async def _call_page(self, call_id: int) -> None:
        async for name, _data in self._events(f"/calls/{call_id}/events"):
            if name == "end":
                return

    async def _scrape(self, token: str) -> None:
        assert self._http is not None
        headers = {"Authorization": f"Bearer {token}"}
        while True:
            async with self._http.get(f"{self.base_url}/metrics", headers=headers) as response:
                await response.read()
                if response.status == 200:
                    self.scrapes += 1
                else:
                    self.errors.append(f"/metrics: HTTP {response.status}")
            await asyncio.sleep(SCRAPE_SECONDS)
