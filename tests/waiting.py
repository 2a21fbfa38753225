"""Waiting on what a test can observe, never on the clock: a busy machine only makes it slower."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Any], timeout: float = 15, what: str = "the condition") -> Any:
    """Poll ``check`` (sync, or returning an awaitable) until it returns something truthy.

    ``timeout`` only bounds a test that would otherwise hang; it is generous on purpose, so
    that a slow machine takes longer instead of failing."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.02)
