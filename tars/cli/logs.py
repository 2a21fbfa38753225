"""Where pipecat's loguru lines go: the standard error stream as it is *now*.

loguru's ``logger.add(sys.stderr)`` keeps the stream object it was given. When that object is
swapped out and closed later — by ``typer.testing.CliRunner`` after every command it runs, by
pytest's capture after every test, by a daemon that redirects its streams — each later line
fails with "ValueError: I/O operation on closed file" printed as a traceback. A sink that looks
``sys.stderr`` up at every write follows whatever the process's standard error currently is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class CurrentStderr:
    """A loguru stream sink writing to ``sys.stderr`` as it is when a line is written."""

    def write(self, message: str) -> None:
        sys.stderr.write(message)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:  # loguru colours a terminal, as with sys.stderr itself
        stream = sys.stderr
        return bool(getattr(stream, "isatty", None) and stream.isatty())


def send_loguru_to_stderr(level: str | None, filter: Callable[[Any], bool] | None = None) -> None:
    """Replace every loguru sink with one on the current standard error; ``None`` silences it."""
    from loguru import logger

    logger.remove()
    if level is not None:
        logger.add(CurrentStderr(), level=level, filter=filter)  # type: ignore[arg-type]
