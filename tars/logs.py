"""Secrets never reach a log line, at any level; transcripts only at ``trace``.

Every log record, from TARS's own loggers, the libraries' (``websockets``, ``httpx``,
``twilio``, ``google_genai``) and pipecat's loguru lines alike, passes ``redact`` before it
is written: header values that carry credentials (``x-goog-api-key``, ``Authorization``,
``X-Twilio-Signature`` …), ``key=`` / ``token=`` query parameters, and every configured
secret value are replaced by a mask.

Levels are chosen on purpose: ``debug`` is TARS's own debug lines with the libraries at
INFO (their DEBUG is per-frame: audio, and transcription frames carrying what callers say,
a spoken PIN included); ``trace`` adds the libraries' DEBUG lines, transcripts and all,
still redacted of secrets. ``tars serve --log-level trace`` is the only way to see them.

pipecat's loguru lines go to the standard error stream as it is *now*: loguru's
``logger.add(sys.stderr)`` keeps the stream object it was given, and when that object is
swapped out and closed later (by ``typer.testing.CliRunner``, pytest's capture, a daemon
that redirects its streams) each later line fails with "I/O operation on closed file". A
sink that looks ``sys.stderr`` up at every write follows whatever it currently is.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from tars.config.secrets import MASK, mask_text

#: Loggers whose DEBUG output is per frame (audio, transcripts, raw websocket traffic), and
#: whose INFO is per request or per call ("connection open", an access line for every poll,
#: google-genai's "AFC is enabled"): shown from --log-level debug on, their DEBUG at trace.
CHATTY = (
    "websockets", "httpx", "httpcore", "google_genai", "twilio", "aiohttp", "uvicorn.error", "uvicorn.access",
    "asyncio",
)  # fmt: skip
#: pipecat's warnings about choices TARS made on purpose, once per call (Gemini Live decides the
#: turns itself, so it emits no turn frames): shown from --log-level debug on.
PER_CALL_NOTICES = ("is not emitting turn frames", "realtime mode — mutated turn strategies")
#: Libraries whose INFO lines are their own bookkeeping (alembic: "setup plugin …", "Context impl …"):
#: shown from --log-level debug on.
QUIET = ("alembic",)
_HEADERS = re.compile(
    r"(?i)((?:x-goog-api-key|authorization|proxy-authorization|x-twilio-signature|x-tars-signature|cookie|set-cookie"
    r"|api[-_]?key|auth[-_]?token)\s*[:=]\s*(?:bearer\s+|basic\s+)?)([^\s,;'\"&}]+)"
)
_QUERY = re.compile(r"(?i)([?&](?:key|token|access_token|sig|signature)=)([^&\s'\"]+)")


class CurrentStderr:
    """A loguru stream sink writing to ``sys.stderr`` as it is when a line is written."""

    def write(self, message: str) -> None:
        sys.stderr.write(message)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:  # loguru colours a terminal, as with sys.stderr itself
        stream = sys.stderr
        return bool(getattr(stream, "isatty", None) and stream.isatty())


def send_loguru_to_stderr(
    level: str | None, filter: Callable[[Any], bool] | None = None, *, json_lines: bool = False
) -> None:
    """Replace every loguru sink with one on the current standard error; ``None`` silences it."""
    from loguru import logger

    logger.remove()
    if level is None:
        return
    if json_lines:
        logger.add(_loguru_json_line, level=level, filter=filter)  # type: ignore[arg-type]
    else:
        logger.add(CurrentStderr(), level=level, filter=filter)  # type: ignore[arg-type]


class JsonLines(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``
    and, for an exception, ``error`` (its traceback, redacted like the message)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text or record.exc_info:
            entry["error"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False)


def _loguru_json_line(message: Any) -> None:
    """pipecat's loguru lines in the same shape as the standard ones."""
    record = message.record
    entry = {
        "time": record["time"].astimezone(dt.UTC).isoformat(timespec="milliseconds"),
        "level": record["level"].name.lower(),
        "logger": record["name"] or "pipecat",
        "message": record["message"],
    }
    sys.stderr.write(json.dumps(entry, ensure_ascii=False) + "\n")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    text = _HEADERS.sub(lambda m: m.group(1) + MASK, text)
    text = _QUERY.sub(lambda m: m.group(1) + MASK, text)
    return mask_text(text, set(secrets))


class RedactSecrets(logging.Filter):
    """A handler filter: the record's message, formatted and redacted, replaces its parts."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = frozenset(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error report
            return True
        record.msg, record.args = redact(message, self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True


def install(level: str, secrets: Iterable[str] = (), *, json_lines: bool = False) -> None:
    """Redact every stdlib handler (add this after ``logging.basicConfig``) and pipecat's
    loguru sink; keep the chatty libraries at WARNING (INFO from ``debug``, DEBUG at
    ``trace``). ``json_lines``: one JSON object per line (``tars serve --log-format json``)."""
    secrets = frozenset(secrets)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets(secrets))
    trace = level.lower() == "trace"
    debug = trace or level.lower() == "debug"
    if json_lines:
        for handler in root.handlers:
            handler.setFormatter(JsonLines())
    for name in CHATTY:
        logging.getLogger(name).setLevel(
            logging.DEBUG if trace else logging.INFO if debug else max(logging.WARNING, root.level)
        )
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.DEBUG if trace else max(logging.WARNING, root.level))

    def wanted(record: dict[str, Any]) -> bool:
        # pipecat 1.14 logs an ERROR for the close handshake of every call Twilio hangs up.
        if "exception while closing the websocket" in record["message"]:
            return False
        if not debug and any(notice in record["message"] for notice in PER_CALL_NOTICES):
            return False
        record["message"] = redact(record["message"], secrets)
        return True

    loguru_level = "DEBUG" if trace else ("INFO" if level.lower() == "debug" else "WARNING")
    if level.lower() == "error":
        loguru_level = "ERROR"
    send_loguru_to_stderr(loguru_level, filter=wanted, json_lines=json_lines)
