"""Who may talk to the server: Twilio's webhook signatures, and our own stream tokens.

* Webhooks: ``X-Twilio-Signature`` is checked with twilio's ``RequestValidator``
  against the **public** URL Twilio called (``telephony.public_url`` + path + query),
  never ``request.url``: behind a proxy or tunnel the two differ.
* Media streams: caller identity must not be taken from the stream. When the server
  answers a signed webhook it signs the ``<Parameter>``s it puts in the TwiML (call SID,
  caller, role, purpose, expiry); the websocket is closed unless they verify. The MAC
  covers a canonical encoding (sorted-key JSON), so no value can smuggle in another
  parameter; the stream that presents a token first claims it in the database
  (``tars.store.stream_tokens``), so each token opens one stream.
* Identity fields of a webhook (``CallSid``, ``From``, ``To``…) carrying control
  characters are refused: Twilio never sends them, and they would only be an attack on
  whatever later prints or signs them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

SIGNATURE_PARAM = "sig"
EXPIRES_PARAM = "exp"
NONCE_PARAM = "n"
STREAM_TOKEN_TTL = 120  # seconds between answering the webhook and the stream opening
#: Webhook fields that name a call or a party: never multi-line, never control characters.
IDENTITY_FIELDS = ("CallSid", "AccountSid", "From", "To", "Caller", "Called", "ParentCallSid", "Digits")


def control_characters_in(params: Mapping[str, str]) -> str | None:
    """The first identity field whose value holds a control character, if any."""
    for name in IDENTITY_FIELDS:
        value = params.get(name, "")
        if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
            return name
    return None


def public_url(base: str, path: str, query: str = "") -> str:
    """The URL Twilio signed: the configured public base, our path, the raw query."""
    url = base.rstrip("/") + path
    return f"{url}?{query}" if query else url


def valid_twilio_signature(auth_token: str, url: str, params: Mapping[str, str], signature: str | None) -> bool:
    """Twilio's own check (HMAC-SHA1 over URL + sorted params; SHA-256 variant; JSON bodies)."""
    if not signature or not auth_token:
        return False
    from twilio.request_validator import RequestValidator

    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


class StreamSigner:
    """Signs and verifies the parameters handed to a media stream."""

    def __init__(self, key: bytes):
        self._key = key

    @classmethod
    def from_secret(cls, secret: str) -> StreamSigner:
        """Keyed by a configured secret (so several servers agree), else random per process."""
        if not secret:
            return cls(secrets.token_bytes(32))
        return cls(hmac.new(secret.encode(), b"tars stream parameters v2", hashlib.sha256).digest())

    def _mac(self, params: Mapping[str, str]) -> str:
        signed = {str(k): str(v) for k, v in params.items() if k != SIGNATURE_PARAM}
        canonical = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        digest = hmac.new(self._key, canonical.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, params: Mapping[str, str], ttl: int = STREAM_TOKEN_TTL, now: float | None = None) -> dict[str, str]:
        signed = {k: str(v) for k, v in params.items()}
        signed[EXPIRES_PARAM] = str(int((now or time.time()) + ttl))
        signed[NONCE_PARAM] = secrets.token_hex(8)  # two streams signed alike in one second differ
        signed[SIGNATURE_PARAM] = self._mac(signed)
        return signed

    def verify(self, params: Mapping[str, str], now: float | None = None) -> str | None:
        """None if the parameters are ours and fresh, else why not."""
        given = params.get(SIGNATURE_PARAM)
        if not given:
            return "stream parameters are not signed"
        if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), self._mac(params).encode()):
            return "stream parameter signature does not match"
        try:
            expires = int(params.get(EXPIRES_PARAM, "0"))
        except ValueError:
            return "stream parameter expiry is malformed"
        if expires < (now or time.time()):
            return "stream parameters have expired"
        return None


def websocket_url(public_base: str, path: str) -> str:
    """``wss://host/path`` for a public ``https://host`` base (``ws://`` for plain http)."""
    parts = urlsplit(public_base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}"
