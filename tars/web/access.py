"""Who may see the web view: the owner, signed in once with the API token.

* **The session** is a cookie the server signs (HMAC-SHA256) with a key derived from the API
  token, holding a random session id and its expiry (``SESSION_DAYS``): stateless, so every
  ``tars serve`` worker accepts it, and changing the token signs every browser out.
  ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it) and
  ``Secure`` when the request came over https, directly or through a proxy that says so
  (``X-Forwarded-Proto``).
* **CSRF:** every POST carries a token bound to the session (an HMAC of its id), in the form
  field ``csrf`` or the ``X-CSRF-Token`` header; the sign-in form, before any session, uses a
  double-submit cookie.
* **Sign-in is rate limited** in the database (``tars.store.sign_in_attempts``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

SESSION_COOKIE = "tars_session"
SIGN_IN_COOKIE = "tars_sign_in"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_DAYS = 30


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Keys:
    """The web view's signing key, derived from the API token (never the token itself)."""

    key: bytes

    @classmethod
    def from_token(cls, api_token: str) -> Keys:
        return cls(hmac.new(api_token.encode("utf-8", "replace"), b"tars web session v1", hashlib.sha256).digest())

    def _mac(self, purpose: bytes, data: bytes) -> str:
        return _b64(hmac.new(self.key, purpose + b"\0" + data, hashlib.sha256).digest())

    def new_session(self, now: float | None = None) -> str:
        """A fresh session cookie value."""
        payload = json.dumps(
            {"sid": secrets.token_urlsafe(18), "exp": int((now or time.time()) + SESSION_DAYS * 86400)},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        body = _b64(payload)
        return f"{body}.{self._mac(b'session', body.encode())}"

    def session_id(self, cookie: str | None, now: float | None = None) -> str | None:
        """The session id in a cookie this server signed and that has not expired, else None."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 512:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(b"session", body.encode()).encode()):
            return None
        try:
            payload: dict[str, Any] = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(payload, dict) or int(payload.get("exp", 0)) < (now or time.time()):
            return None
        sid = payload.get("sid")
        return sid if isinstance(sid, str) else None

    def csrf(self, session_id: str) -> str:
        return self._mac(b"csrf", session_id.encode())


def keys(request: Request) -> Keys:
    return Keys.from_token(str(request.app.state.api_token))


def session_of(request: Request) -> str | None:
    """The signed-in session's id, or None."""
    return keys(request).session_id(request.cookies.get(SESSION_COOKIE))


def over_https(request: Request) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=over_https(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="strict", secure=over_https(request))


def same(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode("utf-8", "replace"), expected.encode())


def csrf_ok(request: Request, form: dict[str, str], session_id: str) -> bool:
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    return same(given, keys(request).csrf(session_id))


def client_address(request: Request) -> str:
    """Who is signing in, for the rate limit (uvicorn has applied a trusted proxy's
    ``X-Forwarded-For`` already)."""
    return request.client.host if request.client else "unknown"
