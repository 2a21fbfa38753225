"""A loopback Twilio: REST API, signed webhooks, TwiML and Media Streams, on 127.0.0.1.

TARS talks to Twilio three ways, and the emulator speaks all three the way the
real service does (wire facts: ``/work/shared/reference/wire-protocols.md`` B):

1. **REST** (twilio-python ``Client``, pipecat's hang-up): see ``rest``.
2. **Webhooks**: voice URL, ``<Gather action>``, ``<Redirect>``, status callbacks,
   async AMD callbacks and SMS status callbacks, all form-encoded and signed with
   ``X-Twilio-Signature`` over the *public* URL (see :meth:`TwilioEmulator.route`).
3. **Media Streams**: ``<Connect><Stream>`` opens a websocket to the app; see
   ``media``. Caller audio is synthetic speech from ``tars.emulators.speech``.

Public API::

    emu = TwilioEmulator(account_sid="AC" + "0" * 32, auth_token="test-token",
                         realtime=True,            # pace caller audio at 20 ms, Pause/Say take time
                         realtime_playback=None,   # agent audio "plays" at 8 kHz (default: realtime)
                         numbers=None,             # set of owned From numbers (else any E.164)
                         api_keys={"SK…": "secret"})
    async with emu:                        # or: with emu.running_in_thread(): emu.run_sync(coro)
        emu.base_url                       # "http://127.0.0.1:PORT": REST root, pipecat base_url
        emu.rest_client()                  # real twilio.rest.Client (blocking); async_http=True
        emu.route("https://tars.example.com", "http://127.0.0.1:8080")  # act as reverse proxy
        emu.set_party("+15550001111", Party(answer="voicemail", gather=["1#"]))
        call = await emu.incoming_call(from_="+1555…", to="+1555…", voice_url=…)
        call = await emu.next_call(timeout=5)        # the next call created (e.g. by TARS)
        await call.say("Hello"); await call.press("5"); await call.silence(500)
        utterance = await call.wait_for_agent_utterance(timeout=10)   # speech.Utterance
        await call.hang_up(); await call.wait_ended()
        await call.run_script([{"say": "Hi"}, {"expect": "welcome"}, {"hang_up": True}])
        emu.calls[sid]; emu.messages; emu.errors; emu.warnings; emu.assert_no_errors()
        emu.serve_number(TARS_NUMBER, voice_url)   # a <Dial> to it rings that webhook (emu.loops)
        emu.conferences.view()             # rooms, who is in them, who left, why they ended

``<Dial>`` (``<Number>``, a bare number, ``<Conference>``) is parsed by ``twiml_dial`` and
run by ``dial`` (legs, whisper, bridge, ``action``) and ``conference``
(rooms; their REST resources in ``conference_rest``). A leg is a :class:`Call` with
``direction="outbound-dial"`` and ``parent_call_sid``; the dialing call lists them in
``legs`` and each ``<Dial>``'s outcome in ``dials``; ``bridged_with``, ``conference`` and
``hold_audio`` say whom a call is connected to and what it heard while waiting.

A :class:`Call` (in ``call``, with :class:`Party`) records ``sid``,
``direction``, ``from_``, ``to``, ``status`` and ``status_history``, ``answered_by``,
``ended_by`` (caller, rest, app, emulator), ``documents`` (TwiML seen), ``verbs``,
``webhooks``, ``status_callbacks``, ``rest_updates``/``rest_hangups``, ``streams`` (each
a ``MediaStream`` with the frames sent and received, agent audio with arrival times,
``marks``), ``said``/``heard``, ``party_digits``/``agent_digits``, ``gathers`` and ``errors``.

Calls end the way Twilio ends them: ``<Hangup/>`` or the end of the document,
the server closing the stream, the caller's :meth:`Call.hang_up` (``stop`` then
close), or a REST update ``Status=completed`` (``stop`` then close, no further
TwiML). Each is followed by the ``completed`` status callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp import web

from tars.emulators.speech import Utterance
from tars.emulators.twilio import twiml
from tars.emulators.twilio.call import Call, CallEnded, Party, ScriptError
from tars.emulators.twilio.conference import Conferences
from tars.emulators.twilio.conference_rest import ConferenceApi
from tars.emulators.twilio.dial import Dialer, Loop
from tars.emulators.twilio.rest import API_VERSION, Message, RestApi, TwilioError, Webhooks, new_sid, rfc2822

if TYPE_CHECKING:
    from twilio.rest import Client

__all__ = ["Call", "CallEnded", "Party", "ScriptError", "TwilioEmulator", "Utterance"]

log = logging.getLogger("tars.emulators.twilio.emulator")
T = TypeVar("T")
SIP_CODES = {"completed": "200", "busy": "486", "no-answer": "487", "failed": "500"}


class TwilioEmulator:
    """The Twilio subset TARS uses, on loopback; see the module docstring."""

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-token",
        *,
        realtime: bool = True,
        realtime_playback: bool | None = None,
        numbers: set[str] | None = None,
        api_keys: dict[str, str] | None = None,
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.realtime = realtime
        self.realtime_playback = realtime if realtime_playback is None else realtime_playback
        self.numbers = numbers
        self.api_keys = dict(api_keys or {})
        self.calls: dict[str, Call] = {}
        self.messages: list[Message] = []
        self.errors: list[TwilioError] = []
        self.warnings: list[str] = []
        self.parties: dict[str, Party] = {}
        self.default_party = Party()
        self.webhooks = Webhooks(auth_token)
        self.served_numbers: dict[str, tuple[str, str | None]] = {}  # number → (voice URL, status URL)
        self.loops: list[Loop] = []  # <Dial>s that rang a served number (see dial)
        self.conferences = Conferences(self)  # rooms; .view() lists them with their participants
        self._interpreter = twiml.Interpreter(self)
        self._dialer = Dialer(self)
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._want_port = port  # 0: a free port
        self._tasks: set[asyncio.Task[Any]] = set()
        self._new_calls: asyncio.Queue[Call] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """REST root, ``http://127.0.0.1:PORT`` (pass as pipecat's ``base_url``)."""
        if not self._port:
            raise RuntimeError("TwilioEmulator is not running")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and serve the REST API."""
        self._loop = asyncio.get_running_loop()
        self._new_calls = asyncio.Queue()
        app = web.Application()
        app.add_routes(ConferenceApi(self).routes())  # before RestApi's catch-all 404
        app.add_routes(RestApi(self).routes())
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._want_port)
        await site.start()
        self._port = self._runner.addresses[0][1]
        await self.webhooks.start()

    async def stop(self) -> None:
        """End live calls, cancel background work, close sockets: nothing is left running."""
        for call in list(self.calls.values()):
            if not call.ended:
                self._end_call(call, "completed", by="emulator")
        for call in self.calls.values():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.ended_event.wait(), 5)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.webhooks.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._port = 0

    async def __aenter__(self) -> TwilioEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[TwilioEmulator]:
        """Run the emulator on its own event loop thread, for synchronous code."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="twilio-emulator", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(10)
            yield self
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        """Run ``coro`` on the emulator's thread (only inside :meth:`running_in_thread`)."""
        assert self._loop is not None, "emulator not running"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- configuration and inspection ------------------------------------------------

    def route(self, public_base_url: str, local_base_url: str) -> None:
        """Act as a reverse proxy: sign ``public_base_url``…, deliver to ``local_base_url``…."""
        self.webhooks.route(public_base_url, local_base_url)

    def serve_number(self, number: str, voice_url: str, status_callback: str | None = None) -> None:
        """``number`` is one of this account's numbers, its voice webhook ``voice_url``: a
        ``<Dial>`` to it rings back in as a new inbound call (see ``dial``)."""
        self.served_numbers[number] = (voice_url, status_callback)

    def set_party(self, number: str, party: Party) -> None:
        """Who answers outbound calls to ``number`` and how (default: ``default_party``)."""
        self.parties[number] = party

    def rest_client(
        self,
        *,
        api_key: tuple[str, str] | None = None,
        auth_token: str | None = None,
        async_http: bool = False,
    ) -> Client:
        """A real ``twilio.rest.Client`` whose every ``*.twilio.com`` request comes here.

        The default client blocks: when the emulator shares your event loop, call it
        from a thread (``await asyncio.to_thread(client.calls.create, …)``). With
        ``async_http=True`` it uses twilio's aiohttp client for the ``*_async``
        methods; close it with ``await client.http_client.close()``.
        """
        from twilio.rest import Client

        from tars.emulators.twilio.rest import loopback_async_http_client, loopback_http_client

        user, password = api_key or (self.account_sid, auth_token or self.auth_token)
        factory = loopback_async_http_client if async_http else loopback_http_client
        http = factory(self.base_url)
        return Client(user, password, account_sid=self.account_sid, http_client=http)

    async def next_call(self, timeout: float = 10) -> Call:
        """The next call created (REST or :meth:`incoming_call`), in order."""
        assert self._new_calls is not None, "emulator not running"
        return await asyncio.wait_for(self._new_calls.get(), timeout)

    def assert_no_errors(self) -> None:
        """Fail with every Twilio error and script failure recorded so far."""
        problems = [str(e) for e in self.errors]
        problems += [f"script [{c.sid}]: {e}" for c in self.calls.values() for e in c.script_errors]
        if problems:
            raise AssertionError("Twilio emulator saw errors:\n  " + "\n  ".join(problems))

    def _record_error(self, error: TwilioError) -> None:
        log.warning("%s", error)
        self.errors.append(error)
        call = self.calls.get(error.call_sid or "")
        if call is not None:
            call.errors.append(error)

    def _call_error(self, call: Call, code: int, message: str, where: str) -> None:
        self._record_error(TwilioError(code, message, where, call.sid))

    # --- placing calls -----------------------------------------------------------------

    def _place_call(self, form: dict[str, str], events: list[str]) -> Call:
        """``POST Calls.json`` accepted: create the call and start its lifecycle."""
        call = Call(
            emulator=self,
            sid=new_sid("CA"),
            direction="outbound-api",
            from_=form["From"],
            to=form["To"],
            party=self.parties.get(form["To"], self.default_party),
            params=form,
            status_callback=form.get("StatusCallback"),
            status_callback_method=form.get("StatusCallbackMethod", "POST"),
            status_callback_events=tuple(events) or ("completed",),
        )
        self._add_call(call)
        source = twiml.Source(url=form.get("Url"), method=form.get("Method", "POST"))
        if not form.get("Url"):
            source = twiml.Source(twiml=form["Twiml"])
        self._spawn(self._run_call(call, source), f"twilio-call-{call.sid}")
        return call

    async def incoming_call(
        self,
        *,
        from_: str,
        to: str,
        voice_url: str,
        method: str = "POST",
        status_callback: str | None = None,
        party: Party | None = None,
    ) -> Call:
        """Someone dials ``to``: Twilio POSTs the number's voice webhook (CallStatus=ringing)."""
        call = Call(
            emulator=self,
            sid=new_sid("CA"),
            direction="inbound",
            from_=from_,
            to=to,
            party=party or self.default_party,
            params={},
            status="ringing",
            status_callback=status_callback,
            status_callback_method="POST",
            status_callback_events=("completed",),
        )
        self._add_call(call)
        source = twiml.Source(url=voice_url, method=method)
        self._spawn(self._run_call(call, source), f"twilio-call-{call.sid}")
        return call

    def _add_call(self, call: Call) -> None:
        self.calls[call.sid] = call
        assert self._new_calls is not None
        self._new_calls.put_nowait(call)

    async def _pace(self, seconds: float) -> None:
        if self.realtime and seconds > 0:
            await asyncio.sleep(seconds)

    async def _run_call(self, call: Call, source: twiml.Source) -> None:
        """The life of one call, from dialling to the final status callback."""
        try:
            if call.direction == "outbound-api":
                await self._status_event(call, "initiated")
                call.set_status("ringing")
                await self._status_event(call, "ringing")
                timeout = float(call.params.get("Timeout") or 60)  # REST default: 60 s of ringing
                await self._pace(min(call.party.ring_ms / 1000, timeout))
                if call.ended:  # canceled while ringing
                    return
                if call.party.ring_ms / 1000 >= timeout:
                    call.finish("no-answer")
                    return
                if call.party.answer in {"busy", "no-answer", "failed", "decline"}:
                    call.finish("busy" if call.party.answer == "decline" else call.party.answer)
                    return
                self._answer(call)
                await self._status_event(call, "answered")
                if "SendDigits" in call.params:
                    call.agent_digits.append(call.params["SendDigits"].replace("w", "").upper())
                if call.answered_by and call.params.get("AsyncAmd") == "true":
                    self._spawn(self._async_amd(call), f"twilio-amd-{call.sid}")
            next_source: twiml.Source | None = source
            while next_source is not None and not call.ended:
                call.redirect_to = None
                task = asyncio.create_task(self._interpreter.run(call, next_source))
                call.exec_task = task
                try:
                    await asyncio.wait({task})
                finally:
                    if not task.done():
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    self._call_error(call, 0, f"emulator bug: {exc!r}", "TwiML interpreter")
                next_source = call.redirect_to
        finally:
            if not call.ended:
                call.ended_by = "app"  # end of TwiML, <Hangup/>, or the app closed the stream
            call.finish("completed")
            for stream in call.streams:
                await stream.stop()
            if call.script_task is not None and not call.script_task.done():
                call.script_task.cancel()
            await self._status_event(call, "completed")
            call.ended_event.set()

    def _answer(self, call: Call) -> None:
        call.start_time = time.time()
        call.set_status("in-progress")
        detection = call.params.get("MachineDetection")
        if detection:
            party = call.party
            default = {"human": "human", "fax": "fax"}.get(party.answer)
            if party.answer == "voicemail":
                default = "machine_end_beep" if detection == "DetectMessageEnd" else "machine_start"
            call.answered_by = party.answered_by or default or "unknown"

    def _end_call(self, call: Call, status: str, by: str) -> None:
        """Hang up now: no more TwiML; the interpreter's cleanup closes the stream."""
        if call.ended:
            return
        call.ended_by = by
        call.finish(status)
        if call.exec_task is not None and not call.exec_task.done():
            call.exec_task.cancel()

    async def _hang_up_by_rest(self, call: Call, status: str) -> None:
        if status == "canceled" and call.status == "in-progress":
            return  # Twilio: ``canceled`` only affects queued or ringing calls
        final = "canceled" if call.status in {"queued", "ringing"} else "completed"
        self._end_call(call, final, by="rest")

    def _listeners(self, call: Call) -> list[Call]:
        """Who hears ``call``'s party speak: the other leg of its <Dial>, or its room."""
        if call.bridged_with is not None:
            return [call.bridged_with]
        return self.conferences.listeners(call)

    async def _dial(self, call: Call, verb: twiml.Dial, doc_url: str | None) -> twiml.Source | None:
        """Run ``<Dial>`` (the interpreter's hook into ``dial``)."""
        return await self._dialer.dial(call, verb, doc_url)

    def _redirect_call(self, call: Call, url: str | None, document: str | None, method: str) -> None:
        """REST update with ``Url``/``Twiml``: stop the current TwiML (and stream), run the new."""
        call.redirect_to = twiml.Source(url=url, method=method) if url else twiml.Source(twiml=document)
        if call.bridged_with is not None and call.direction == "outbound-dial" and call.exec_task is None:
            # A connected <Dial> leg leaves the bridge and runs the new TwiML on its own
            # (the warm-transfer move into a conference); the dialing call's <Dial> ends.
            call.detached.set()
            source, call.redirect_to = call.redirect_to, None
            self._spawn(self._run_call(call, source), f"twilio-call-{call.sid}")
            return
        if call.exec_task is not None and not call.exec_task.done():
            call.exec_task.cancel()

    # --- webhooks ----------------------------------------------------------------------

    async def _post(
        self, call: Call | None, kind: str, url: str, params: dict[str, str], method: str = "POST"
    ) -> str | None:
        """Send one signed webhook; record it; return the body (None on failure)."""
        record: dict[str, Any] = {"kind": kind, "url": url, "method": method, "params": params}
        if call is not None:
            call.webhooks.append(record)
        try:
            result = await self.webhooks.send(url, params, method)
        except (LookupError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            record["status"] = None
            where = f"{kind} {method} {url}"
            if call is not None:
                self._call_error(call, 11200, f"HTTP retrieval failure: {exc!r}", where)
            else:
                self._record_error(TwilioError(11200, f"HTTP retrieval failure: {exc!r}", where))
            return None
        record["status"] = result.status
        if not 200 <= result.status < 300:
            message = f"HTTP retrieval failure: {url} answered {result.status}: {result.body[:200]}"
            err = TwilioError(11200, message, f"{kind} {method} {url}", call.sid if call else None)
            self._record_error(err)
            return None
        record["content_type"] = result.content_type
        return result.body

    async def _status_event(self, call: Call, event: str) -> None:
        if not call.status_callback or event not in call.status_callback_events:
            return
        params = call.webhook_params() | {
            "CallbackSource": "call-progress-events",
            "Timestamp": rfc2822(time.time()) or "",
            "SequenceNumber": str(call.callback_sequence),
        }
        call.callback_sequence += 1
        if event == "initiated":
            params["CallStatus"] = "initiated"
        if event == "completed":  # sent for every final status (busy, no-answer …), too
            params["CallDuration"] = str(call.duration)
            params["Duration"] = str(-(-call.duration // 60))  # billed minutes, rounded up
            params["SipResponseCode"] = SIP_CODES.get(call.status, "487")
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        call.status_callbacks.append(params)
        await self._post(call, "status", call.status_callback, params, call.status_callback_method)

    async def _async_amd(self, call: Call) -> None:
        url = call.params.get("AsyncAmdStatusCallback")
        if not url:
            return
        await self._pace(2.0)
        params = {
            "AccountSid": call.account_sid,
            "CallSid": call.sid,
            "AnsweredBy": call.answered_by or "unknown",
            "MachineDetectionDuration": "2000",
        }
        method = call.params.get("AsyncAmdStatusCallbackMethod", "POST")
        await self._post(call, "amd", url, params, method)

    def _send_message(self, message: Message) -> None:
        self.messages.append(message)
        self._spawn(self._message_lifecycle(message), f"twilio-sms-{message.sid}")

    async def _message_lifecycle(self, message: Message) -> None:
        for status in ("sent", "delivered"):
            message.status = status
            message.status_history.append(status)
            if message.status_callback:
                params = {
                    "AccountSid": message.account_sid,
                    "ApiVersion": API_VERSION,
                    "From": message.from_,
                    "To": message.to,
                    "MessageSid": message.sid,
                    "SmsSid": message.sid,
                    "MessageStatus": status,
                    "SmsStatus": status,
                }
                await self._post(None, "sms-status", message.status_callback, params)
