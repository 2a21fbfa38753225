"""The REST side of the Twilio emulator: Basic auth, resources, errors, signed webhooks.

What the wire requires, and why this module insists on it:

* **REST** lives under ``/2010-04-01/Accounts/{AccountSid}/…json`` with form-encoded
  bodies and HTTP Basic auth (``AccountSid:AuthToken`` or ``SK…:secret``). A bad
  credential is ``401`` code **20003**; an unknown resource is ``404`` code
  **20404**; an invalid ``To`` is ``400`` code **21211**. Errors are Twilio's JSON
  (``code``, ``message``, ``more_info``, ``status``) because twilio-python builds
  ``TwilioRestException.code`` from it and pipecat checks ``code == 20404``.
* Updating a call that has already ended answers **404 / 20404** even though a
  fetch still works: that is what real Twilio did in pipecat issue #2145, and why
  pipecat treats 20404 as "already ended".
* **Webhooks** are signed: ``X-Twilio-Signature = base64(HMAC-SHA1(auth_token,
  url + k1 + v1 + k2 + v2 …))`` with keys sorted, over the **public** URL Twilio
  called. Behind a reverse proxy the app sees another URL, so the emulator signs
  the public URL, sends the request to the mapped local URL and adds
  ``X-Forwarded-Proto``/``X-Forwarded-Host`` the way a proxy would.
* The emulator has no internet: a webhook URL that is neither loopback nor mapped
  with :meth:`Webhooks.route` fails loudly (error 11200) instead of hanging.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlencode, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from tars.sim.twilio import Call, TwilioEmulator

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CALL_CREATE_PARAMS = frozenset(
    {
        "To", "From", "Url", "Twiml", "ApplicationSid", "Method", "FallbackUrl",
        "FallbackMethod", "StatusCallback", "StatusCallbackEvent", "StatusCallbackMethod",
        "SendDigits", "Timeout", "Record", "MachineDetection", "MachineDetectionTimeout",
        "AsyncAmd", "AsyncAmdStatusCallback", "AsyncAmdStatusCallbackMethod", "CallerId",
        "TimeLimit", "Trim", "CallReason",
    }
)  # fmt: skip
CALL_UPDATE_PARAMS = frozenset(
    {"Url", "Method", "Status", "FallbackUrl", "FallbackMethod", "StatusCallback",
     "StatusCallbackMethod", "Twiml", "TimeLimit"}
)  # fmt: skip
COUNTRY_PREFIXES = (("+1", "US"), ("+44", "GB"), ("+49", "DE"), ("+33", "FR"), ("+61", "AU"))


def new_sid(prefix: str) -> str:
    """A Twilio SID: two-letter prefix + 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(ts: float | None) -> str | None:
    """Twilio's date format, e.g. ``Tue, 31 Aug 2010 20:36:28 +0000``."""
    return None if ts is None else formatdate(ts, usegmt=False).replace("-0000", "+0000")


def format_number(number: str) -> str:
    """``+15551234567`` → ``(555) 123-4567`` (NANP); other numbers unchanged."""
    if number.startswith("+1") and len(number) == 12:
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return number


def country_of(number: str) -> str:
    """ISO country for the ``FromCountry``/``ToCountry`` webhook params (best effort)."""
    return next((c for p, c in COUNTRY_PREFIXES if number.startswith(p)), "")


@dataclass
class TwilioError:
    """Something Twilio would reject or log in its debugger: kept so tests can see it."""

    code: int
    message: str
    where: str
    call_sid: str | None = None
    at: float = field(default_factory=time.monotonic)

    def __str__(self) -> str:
        call = f" [{self.call_sid}]" if self.call_sid else ""
        return f"Twilio error {self.code} at {self.where}{call}: {self.message}"


class RestError(Exception):
    """Raised inside a handler; becomes Twilio's JSON error response."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(code: int, message: str, status: int) -> dict[str, Any]:
    """The JSON body Twilio returns for an API error."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def signature(token: str, url: str, params: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
    """Compute ``X-Twilio-Signature`` the way Twilio does (HMAC-SHA1, base64).

    The string to sign is the full URL followed by every POST parameter as
    ``name + value``, names sorted; a repeated name contributes its sorted
    distinct values (what twilio-python's ``RequestValidator`` expects). GET
    requests carry their parameters in the URL and sign no body parameters.
    """
    pairs = params.items() if isinstance(params, Mapping) else params
    grouped: dict[str, set[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, set()).add(value)
    payload = url + "".join(k + v for k in sorted(grouped) for v in sorted(grouped[k]))
    mac = hmac.new(token.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class Message:
    """One SMS created through ``/Messages.json``."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    status: str = "queued"
    created_at: float = field(default_factory=time.time)
    status_history: list[str] = field(default_factory=lambda: ["queued"])

    def resource(self) -> dict[str, Any]:
        """Twilio's message resource JSON."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"
        return {
            "sid": self.sid, "account_sid": self.account_sid, "to": self.to, "from": self.from_,
            "body": self.body, "status": self.status, "direction": "outbound-api",
            "num_segments": str(max(1, -(-len(self.body) // 160))), "num_media": "0",
            "messaging_service_sid": None, "price": None, "price_unit": "USD",
            "error_code": None, "error_message": None, "api_version": API_VERSION,
            "date_created": rfc2822(self.created_at), "date_updated": rfc2822(time.time()),
            "date_sent": None, "uri": uri,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        }  # fmt: skip


def call_resource(call: Call) -> dict[str, Any]:
    """Twilio's call resource JSON for ``call`` (what ``CallInstance`` reads)."""
    uri = f"/{API_VERSION}/Accounts/{call.account_sid}/Calls/{call.sid}.json"
    sub = uri.removesuffix(".json")
    return {
        "sid": call.sid, "account_sid": call.account_sid, "parent_call_sid": call.parent_call_sid,
        "to": call.to, "to_formatted": format_number(call.to),
        "from": call.from_, "from_formatted": format_number(call.from_),
        "phone_number_sid": None, "status": call.status, "direction": call.direction,
        "answered_by": call.answered_by, "api_version": API_VERSION,
        "date_created": rfc2822(call.created_at), "date_updated": rfc2822(time.time()),
        "start_time": rfc2822(call.start_time), "end_time": rfc2822(call.end_time),
        "duration": None if call.end_time is None else str(call.duration),
        "price": None, "price_unit": "USD", "forwarded_from": None, "group_sid": None,
        "caller_name": None, "queue_time": "0", "trunk_sid": None, "stir_verstat": None,
        "uri": uri,
        "subresource_uris": {
            name: f"{sub}/{name.title().replace('_', '')}.json"
            for name in ("notifications", "recordings", "events", "streams", "payments")
        },
    }  # fmt: skip


@dataclass(frozen=True)
class WebhookResult:
    """What the app answered to one webhook request."""

    public_url: str
    local_url: str
    status: int
    body: str
    content_type: str


class Webhooks:
    """Twilio → app HTTP: public→local routing, signing, forwarded headers."""

    def __init__(self, auth_token: str) -> None:
        self.auth_token = auth_token
        self.routes: list[tuple[SplitResult, SplitResult]] = []
        self._session: aiohttp.ClientSession | None = None

    def route(self, public_base_url: str, local_base_url: str) -> None:
        """Deliver requests for ``public_base_url`` (http(s) and ws(s)) to ``local_base_url``;
        routing the same public URL again re-points it (a load balancer choosing another server)."""
        public = urlsplit(public_base_url)
        self.routes = [(p, local) for p, local in self.routes if p != public]
        self.routes.append((public, urlsplit(local_base_url)))

    def resolve(self, url: str) -> tuple[str, dict[str, str]]:
        """Map a public URL to (local URL, proxy headers); raise ``LookupError`` if unreachable."""
        parts = urlsplit(url)
        for public, local in self.routes:
            prefix = public.path.rstrip("/")
            if parts.netloc.lower() != public.netloc.lower():
                continue
            if prefix and not (parts.path == prefix or parts.path.startswith(prefix + "/")):
                continue
            secure_local = local.scheme in {"https", "wss"}
            websocket = parts.scheme in {"ws", "wss"}
            scheme = ("wss" if secure_local else "ws") if websocket else local.scheme
            path = local.path.rstrip("/") + parts.path[len(prefix) :]
            headers = {
                "X-Forwarded-Proto": "https" if parts.scheme in {"https", "wss"} else "http",
                "X-Forwarded-Host": parts.netloc,
                "X-Forwarded-For": "127.0.0.1",
            }
            return urlunsplit((scheme, local.netloc, path, parts.query, "")), headers
        if parts.hostname in LOOPBACK_HOSTS:
            return url, {}
        raise LookupError(
            f"{url} is not reachable from the emulator (no internet); "
            "map it with emu.route(public_base_url, local_base_url)"
        )

    def sign(self, url: str, params: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
        """Signature for a request Twilio sends to public ``url``."""
        return signature(self.auth_token, url, params)

    async def start(self) -> None:
        """Open the client session (no proxies from the environment).

        Every webhook goes on a connection of its own, as Twilio's do: a pooled keep-alive
        connection races the app's server closing it when idle (uvicorn after 5 s), and the
        webhook written into that close fails for no fault of the app."""
        self._session = aiohttp.ClientSession(trust_env=False, connector=aiohttp.TCPConnector(force_close=True))

    async def close(self) -> None:
        """Close the client session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, url: str, params: Mapping[str, str], method: str = "POST", timeout: float = 15.0
    ) -> WebhookResult:
        """Send a signed webhook; raise ``LookupError``/``aiohttp.ClientError`` on failure."""
        assert self._session is not None, "emulator not started"
        if method.upper() == "GET":
            parts = urlsplit(url)
            query = "&".join(q for q in (parts.query, urlencode(params)) if q)
            public = urlunsplit(parts._replace(query=query))
            sig, data = self.sign(public, {}), None
        else:
            public, sig, data = url, self.sign(url, params), dict(params)
        local, headers = self.resolve(public)
        headers |= {
            "X-Twilio-Signature": sig,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        async with self._session.request(
            method.upper(),
            local,
            data=data,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            body = await response.text()
            return WebhookResult(public, local, response.status, body, response.headers.get("Content-Type", ""))


def basic_auth(request: web.Request) -> tuple[str | None, str | None]:
    """(login, password) from an ``Authorization: Basic …`` header, or (None, None)."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        login, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return (login, password) if sep else (None, None)


class RestApi:
    """aiohttp handlers for the Calls and Messages resources of one account."""

    def __init__(self, emu: TwilioEmulator) -> None:
        self.emu = emu

    def routes(self) -> list[web.RouteDef]:
        """The REST routes; everything else is a Twilio 404."""
        base = f"/{API_VERSION}/Accounts/{{account}}"
        return [
            web.post(f"{base}/Calls.json", self._wrap(self.create_call)),
            web.get(f"{base}/Calls.json", self._wrap(self.list_calls)),
            web.get(f"{base}/Calls/{{sid}}.json", self._wrap(self.fetch_call)),
            web.post(f"{base}/Calls/{{sid}}.json", self._wrap(self.update_call)),
            web.post(f"{base}/Messages.json", self._wrap(self.create_message)),
            web.get(f"{base}/Messages/{{sid}}.json", self._wrap(self.fetch_message)),
            web.route("*", "/{tail:.*}", self._wrap(self.not_found, auth=False)),
        ]

    def _wrap(
        self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]], auth: bool = True
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                if auth:
                    self._authenticate(request)
                return await handler(request)
            except RestError as exc:
                self.emu._record_error(TwilioError(exc.code, exc.message, f"REST {request.method} {request.path}"))
                headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if exc.status == 401 else None
                return web.json_response(
                    error_body(exc.code, exc.message, exc.status),
                    status=exc.status,
                    headers=headers,
                )

        return wrapped

    def _authenticate(self, request: web.Request) -> None:
        login, password = basic_auth(request)
        if login is None:
            raise RestError(401, 20003, "Authentication Error - No credentials provided")
        emu = self.emu
        valid = {emu.account_sid: emu.auth_token, **emu.api_keys}
        if not hmac.compare_digest(valid.get(login, "\0"), password or ""):
            raise RestError(401, 20003, "Authentication Error - invalid username")
        if request.match_info.get("account") != emu.account_sid:
            raise RestError(401, 20003, "Authentication Error - account does not match credentials")

    async def _form(self, request: web.Request, known: frozenset[str]) -> dict[str, list[str]]:
        form = await request.post()
        out: dict[str, list[str]] = {}
        for key, value in form.items():
            out.setdefault(key, []).append(str(value))
        unknown = sorted(set(out) - known)
        if unknown:
            self.emu.warnings.append(f"{request.method} {request.path}: ignored params {unknown}")
        return out

    async def not_found(self, request: web.Request) -> web.Response:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")

    def _call(self, request: web.Request) -> Call:
        call = self.emu.calls.get(request.match_info["sid"])
        if call is None:
            raise RestError(404, 20404, f"The requested resource {request.path} was not found")
        return call

    async def create_call(self, request: web.Request) -> web.Response:
        form = await self._form(request, CALL_CREATE_PARAMS)
        one = {k: v[-1] for k, v in form.items()}
        to, from_ = one.get("To", ""), one.get("From", "")
        if not to:
            raise RestError(400, 21201, "No 'To' number is specified")
        if not E164.match(to):
            raise RestError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_:
            raise RestError(400, 21213, "No 'From' number is specified")
        if not E164.match(from_):
            raise RestError(400, 21212, f"The 'From' number {from_} is not a valid phone number.")
        if self.emu.numbers is not None and from_ not in self.emu.numbers:
            raise RestError(400, 21210, f"The source phone number provided, {from_}, is not yet verified.")
        url, twiml = one.get("Url"), one.get("Twiml")
        if not url and not twiml:
            raise RestError(400, 21205, "Url parameter is required (or Twiml).")
        for name in ("Url", "StatusCallback", "AsyncAmdStatusCallback", "FallbackUrl"):
            value = one.get(name)
            if value and urlsplit(value).scheme not in {"http", "https"}:
                raise RestError(400, 21205, f"{name} is not a valid URL: {value}")
        events = [e for v in form.get("StatusCallbackEvent", []) for e in v.split()]
        bad = [e for e in events if e not in CALL_EVENTS]
        if bad:
            raise RestError(400, 21626, f"Invalid StatusCallbackEvent {bad}; use {CALL_EVENTS}")
        checks = {
            "MachineDetection": {"Enable", "DetectMessageEnd"},
            "AsyncAmd": {"true", "false"},
            "Method": {"GET", "POST"},
            "StatusCallbackMethod": {"GET", "POST"},
        }
        for name, allowed in checks.items():
            if name in one and one[name] not in allowed:
                raise RestError(400, 20001, f"{name} must be one of {sorted(allowed)}")
        if "SendDigits" in one and not re.fullmatch(r"[0-9*#wW]+", one["SendDigits"]):
            raise RestError(400, 20001, "SendDigits may only contain 0-9, *, # and w")
        if "Timeout" in one and not one["Timeout"].isdigit():
            raise RestError(400, 20001, "Timeout must be an integer number of seconds")
        if twiml and len(twiml) > 4000:
            raise RestError(400, 20001, "Twiml is longer than 4000 characters")
        if url and twiml:  # twilio-python's docstring: Twiml is then ignored
            self.emu.warnings.append("Calls.create got both Url and Twiml; Twiml is ignored")
        call = self.emu._place_call(one, events)
        return web.json_response(call_resource(call), status=201)

    async def list_calls(self, request: web.Request) -> web.Response:
        calls = [call_resource(c) for c in self.emu.calls.values()]
        fields = {"To": "to", "From": "from", "Status": "status", "ParentCallSid": "parent_call_sid"}
        for key, name in fields.items():  # ParentCallSid: the legs a <Dial> placed
            if key in request.query:
                calls = [c for c in calls if c[name] == request.query[key]]
        uri = request.path_qs
        page = {"first_page_uri": uri, "next_page_uri": None, "previous_page_uri": None}
        return web.json_response(
            {"calls": calls, "page": 0, "page_size": 50, "start": 0, "end": len(calls), "uri": uri} | page
        )

    async def fetch_call(self, request: web.Request) -> web.Response:
        return web.json_response(call_resource(self._call(request)))

    async def update_call(self, request: web.Request) -> web.Response:
        call = self._call(request)
        form = await self._form(request, CALL_UPDATE_PARAMS)
        one = {k: v[-1] for k, v in form.items()}
        record: dict[str, Any] = {
            "params": one,
            "auth_user": basic_auth(request)[0],
            "call_status": call.status,
        }
        call.rest_updates.append(record)
        try:
            response = await self._apply_update(request, call, one)
        except RestError as exc:
            record["response"] = exc.status
            raise
        record["response"] = response.status
        return response

    async def _apply_update(self, request: web.Request, call: Call, one: dict[str, str]) -> web.Response:
        status, url, document = one.get("Status"), one.get("Url"), one.get("Twiml")
        if status is not None and status not in {"completed", "canceled"}:
            raise RestError(400, 20001, f"Status must be completed or canceled, not {status!r}")
        if url and document:
            raise RestError(400, 20001, "Url and Twiml are mutually exclusive")
        if document and len(document) > 4000:
            raise RestError(400, 20001, "Twiml is longer than 4000 characters")
        if call.ended:
            # Real Twilio: fetch still works, but updating an ended call is a 404.
            raise RestError(404, 20404, f"The requested resource {request.path} was not found")
        if status is not None:
            await self.emu._hang_up_by_rest(call, status)
        elif url or document:
            if call.status != "in-progress":
                raise RestError(400, 21220, "Call is not in-progress. Cannot redirect.")
            self.emu._redirect_call(call, url, document, one.get("Method", "POST"))
        return web.json_response(call_resource(call))

    async def create_message(self, request: web.Request) -> web.Response:
        form = await self._form(request, frozenset({"To", "From", "Body", "StatusCallback", "MessagingServiceSid"}))
        one = {k: v[-1] for k, v in form.items()}
        to, from_, body = one.get("To", ""), one.get("From", ""), one.get("Body", "")
        if not to:
            raise RestError(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to):
            raise RestError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_ and not one.get("MessagingServiceSid"):
            raise RestError(400, 21603, "A 'From' phone number is required.")
        if from_ and self.emu.numbers is not None and from_ not in self.emu.numbers:
            reason = f"The From phone number {from_} is not an SMS-capable number of yours."
            raise RestError(400, 21606, reason)
        if not body:
            raise RestError(400, 21602, "Message body is required.")
        if len(body) > 1600:
            raise RestError(400, 21617, "The concatenated message body exceeds 1600 characters.")
        message = Message(new_sid("SM"), self.emu.account_sid, to, from_, body, one.get("StatusCallback"))
        self.emu._send_message(message)
        return web.json_response(message.resource(), status=201)

    async def fetch_message(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        message = next((m for m in self.emu.messages if m.sid == sid), None)
        if message is None:
            raise RestError(404, 20404, f"The requested resource {request.path} was not found")
        return web.json_response(message.resource())


def loopback_http_client(base_url: str) -> Any:
    """A twilio-python ``TwilioHttpClient`` that sends every ``*.twilio.com`` request to
    ``base_url`` (scheme and host replaced, path kept) and ignores proxy env vars.

    Rewriting in the HTTP client covers every Twilio domain; setting
    ``client.api.base_url`` also works but only for ``api.twilio.com``. Never set
    ``edge``/``region``: ``get_hostname`` would rewrite the host first.
    """
    from twilio.http.http_client import TwilioHttpClient

    target = urlsplit(base_url)

    class LoopbackTwilioHttpClient(TwilioHttpClient):
        def __init__(self) -> None:
            super().__init__()
            if self.session is not None:
                self.session.trust_env = False

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            parts = urlsplit(url)
            host = parts.hostname or ""
            if host == "twilio.com" or host.endswith(".twilio.com"):
                url = urlunsplit(parts._replace(scheme=target.scheme, netloc=target.netloc))
            return super().request(method, url, *args, **kwargs)

    return LoopbackTwilioHttpClient()


def loopback_async_http_client(base_url: str) -> Any:
    """Like :func:`loopback_http_client`, for twilio-python's aiohttp-based
    ``AsyncTwilioHttpClient`` (``create_async``/``fetch_async``…). Close it with
    ``await client.http_client.close()``."""
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    target = urlsplit(base_url)

    class LoopbackAsyncTwilioHttpClient(AsyncTwilioHttpClient):
        async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            parts = urlsplit(url)
            host = parts.hostname or ""
            if host == "twilio.com" or host.endswith(".twilio.com"):
                url = urlunsplit(parts._replace(scheme=target.scheme, netloc=target.netloc))
            return await super().request(method, url, *args, **kwargs)

    return LoopbackAsyncTwilioHttpClient()
