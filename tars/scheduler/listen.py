"""Cross-process wake-ups on PostgreSQL: ``LISTEN``/``NOTIFY``.

Work stored by one process (a scheduled call from `tars call --at`, a message for a live
call held by another server, a reminder from `tars remind add`) sends ``NOTIFY tars_wake``
in the transaction that stores it (``tars.store.wakeups``): PostgreSQL delivers it at
commit, and only then. Every server listens on its own connection, in a thread, and wakes
its scheduler at once instead of at its next poll (``scheduler.poll_seconds``), which
stays the fallback if the listening connection is lost.

SQLite has no such channel; there, polling is the only cross-process path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from tars.store.wakeups import CHANNEL

log = logging.getLogger("tars.scheduler")

#: How often the listening thread looks up from waiting (to notice it should stop).
CHECK_SECONDS = 0.5


def supported(engine: Any) -> bool:
    return engine.dialect.name == "postgresql"


def conninfo(engine: Any) -> str:
    """The libpq URI of ``engine``'s database (psycopg's own, without SQLAlchemy's driver name)."""
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def listen(engine: Any, wake: Callable[[], None], loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Wake ``wake`` in ``loop`` on every notification; returns the function that stops."""
    stop = threading.Event()

    def run() -> None:
        import psycopg

        while not stop.is_set():
            try:
                with psycopg.connect(conninfo(engine), autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    while not stop.is_set():
                        for _ in connection.notifies(timeout=CHECK_SECONDS, stop_after=1):
                            with contextlib.suppress(RuntimeError):  # the loop has closed
                                loop.call_soon_threadsafe(wake)
            except psycopg.Error as exc:
                log.warning("listening for wake-ups failed (%s); polling meanwhile", exc)
                stop.wait(5)

    thread = threading.Thread(target=run, name="tars-listen", daemon=True)
    thread.start()

    def unlisten() -> None:
        stop.set()
        thread.join(timeout=CHECK_SECONDS * 4)

    return unlisten
