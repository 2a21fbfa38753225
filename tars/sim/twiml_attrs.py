"""The bottom of the TwiML parser: its error, and the attribute readers every verb and noun uses.

Twilio's own codes (https://www.twilio.com/docs/api/errors): **12100** the document
is not well-formed XML, **12200** it breaks the TwiML schema (unknown verb or noun,
bad attribute value). ``twiml`` (verbs) and ``twiml_dial`` (the ``<Dial>`` nouns)
both raise :class:`TwimlError` through these helpers, so a bad attribute reads the
same wherever it is.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET


class TwimlError(ValueError):
    """A TwiML problem Twilio would reject, with its Twilio error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def attr_method(el: ET.Element, attr: str = "method") -> str:
    """An HTTP method attribute: GET or POST (default POST), else error 12200."""
    method = (el.get(attr) or "POST").upper()
    if method not in {"GET", "POST"}:
        raise TwimlError(12200, f"<{el.tag} {attr}> must be GET or POST, not {method!r}")
    return method


def attr_number(el: ET.Element, attr: str, default: float) -> float:
    """A non-negative number attribute, else error 12200."""
    raw = el.get(attr)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TwimlError(12200, f"<{el.tag} {attr}={raw!r}> is not a number") from None
    if value < 0:
        raise TwimlError(12200, f"<{el.tag} {attr}={raw!r}> must not be negative")
    return value


def attr_bool(el: ET.Element, attr: str, default: bool) -> bool:
    """A ``true``/``false`` attribute (case-insensitive), else error 12200."""
    raw = el.get(attr, str(default))
    if raw.lower() not in {"true", "false"}:
        raise TwimlError(12200, f"<{el.tag} {attr}={raw!r}> must be true or false")
    return raw.lower() == "true"
