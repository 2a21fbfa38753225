"""Twilio's side of a ``<Connect><Stream>`` Media Streams websocket.

Twilio is the websocket *client*. What it sends, and what this emulator sends
exactly the same way (see wire-protocols.md B1):

* ``connected`` (no sequence number), then ``start`` with ``streamSid`` ``MZ…``,
  ``callSid``, ``accountSid``, ``tracks: ["inbound"]`` (a bidirectional stream is
  inbound only), the ``<Parameter>`` values as ``customParameters`` and
  ``mediaFormat`` ``audio/x-mulaw`` 8000 Hz mono;
* ``media`` frames of 160 bytes μ-law (20 ms), base64, with ``sequenceNumber``,
  ``chunk`` and ``timestamp`` as **strings**, paced in real time (and silence
  while the caller is quiet) unless ``realtime=False``;
* ``dtmf`` events (``track: "inbound_track"``), ``mark`` echoes, and ``stop``
  before Twilio closes the socket (caller hang-up, REST hang-up, redirect).

The server may send back only ``media`` (raw μ-law, standard base64), ``mark`` and
``clear``, each with our ``streamSid``. Anything else is recorded as a Twilio
error (31924 malformed, 31951 invalid) and the stream is closed, as Twilio does.

The caller's "ear" is a playback model with a 200 ms jitter buffer (pipecat
sends at about real time, with ±40 ms jitter; without a buffer every late chunk
would cut a gap into the speech). With ``realtime_playback`` agent audio plays at
8000 bytes/s, so a ``mark`` is echoed once the audio queued before it has
played, or at once when ``clear`` drops it; without it, audio counts as played
on arrival (marks echo at once, ``clear`` finds nothing to drop) but is still
laid on a real-rate timeline for the ear, behind a 500 ms buffer, on a clock that stands
still while the process stalls (tests share a busy machine; a stall must not cut the speech,
a real pause still does: ``STALL_SECONDS``). What is heard, with silence whenever
nothing plays, goes through a :class:`~tars.emulators.speech.SpeechDetector`: the
transcript of what the caller heard.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from tars.emulators import speech
from tars.emulators.twilio.rest import new_sid

RATE = 8000
FRAME_BYTES = 160  # 20 ms of μ-law at 8 kHz
FRAME_SECONDS = FRAME_BYTES / RATE
ULAW_SILENCE = b"\xff"
JITTER_BUFFER_SECONDS = 0.2  # playout delay at the start of each talkspurt
# Instant playback (``realtime=False``: tests, simulations) runs beside the server in one busy
# process; a longer buffer keeps a stall of the host (a test machine's other worker starving
# this one of CPU) from cutting a gap into the speech the ear decodes.
INSTANT_JITTER_SECONDS = 0.5
# Instant playback's ear keeps its own clock, which stands still while this process could not
# run: a gap this much longer than a 20 ms frame between two moments the emulator ran (its
# player ticks every frame) was a stall of the host, not silence on the line. Real Twilio is
# another machine and never stalls with the server; an emulator sharing its process would
# otherwise hear each stall as a pause and cut the speech in two.
STALL_SECONDS = 0.1
SERVER_EVENTS = frozenset({"media", "mark", "clear"})


@dataclass(frozen=True)
class AgentFrame:
    """One ``media`` frame from the server: arrival time (monotonic) and μ-law bytes."""

    at: float
    payload: bytes


@dataclass
class Mark:
    """A ``mark`` the server sent: where it sits in the audio, and how it came back."""

    name: str
    position: int  # bytes of agent audio queued before the mark
    received_at: float
    echoed_at: float | None = None
    cleared: bool = False  # echoed because ``clear`` dropped the audio before it


@dataclass
class _Outgoing:
    kind: str  # "audio" | "dtmf"
    data: bytes | str
    done: asyncio.Future[None]
    offset: int = 0
    sent_at: float | None = None  # monotonic time its last frame was written to the socket


@dataclass
class MediaStream:
    """One media stream: the Twilio-side websocket client plus everything it saw."""

    call_sid: str
    account_sid: str
    url: str  # the public URL from TwiML
    local_url: str
    parameters: dict[str, str]
    name: str | None = None
    realtime: bool = True
    realtime_playback: bool = True
    on_error: Callable[[int, str], None] = lambda code, message: None
    on_utterance: Callable[[speech.Utterance], None] = lambda u: None
    stream_sid: str = field(default_factory=lambda: new_sid("MZ"))
    sent: list[dict[str, Any]] = field(default_factory=list)  # frames Twilio sent
    received: list[dict[str, Any]] = field(default_factory=list)  # frames the server sent
    agent_frames: list[AgentFrame] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    clears: int = 0
    dropped_bytes: int = 0
    played_bytes: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    closed_by: str | None = None  # "server" | "twilio" | "error"

    def __post_init__(self) -> None:
        self._ws: ClientConnection | None = None
        self._seq = 0
        self._chunk = 0
        self._outbox: deque[_Outgoing] = deque()
        self._finishing: _Outgoing | None = None  # its last frame is being sent
        self._wake = asyncio.Event()
        self._playback: deque[bytes] = deque()
        self._queued_bytes = 0  # total agent bytes ever queued for playback
        self._detector = speech.SpeechDetector(RATE)
        self._ear_end = time.monotonic()  # instant playback: end of the ear's timeline
        self._ran_at = self._ear_end  # instant playback: the last moment this emulator ran
        self._stalled = 0.0  # instant playback: host stalls so far, left off the ear's clock
        self._play_from = 0.0  # paced playback: the jitter buffer holds audio until then
        self._tasks: list[asyncio.Task[None]] = []
        self._sender: asyncio.Task[None] | None = None  # media and keys, in order (one of _tasks)
        self._echoes: set[asyncio.Task[None]] = set()
        self.started = asyncio.Event()
        self.finished = asyncio.Event()

    @property
    def secure(self) -> bool:
        """Whether the TwiML asked for ``wss://`` (Twilio requires it in production)."""
        return self.url.lower().startswith("wss://")

    @property
    def agent_audio(self) -> bytes:
        """All agent audio received, μ-law 8 kHz, in arrival order."""
        return b"".join(f.payload for f in self.agent_frames)

    def agent_pcm16(self) -> bytes:
        """All agent audio received, decoded to PCM16 LE 8 kHz."""
        return speech.ulaw_to_pcm16(self.agent_audio)

    # --- lifecycle --------------------------------------------------------------

    async def connect(self, headers: Mapping[str, str]) -> None:
        """Open the websocket and send ``connected`` + ``start``.

        Raises ``OSError`` (``ConnectionError`` if the server hung up mid-handshake),
        ``TimeoutError`` or ``websockets.InvalidHandshake``; the stream is then finished.
        """
        try:
            self._ws = await websockets.connect(
                self.local_url, additional_headers=dict(headers), proxy=None, open_timeout=10
            )
            await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            await self._send(self._start_frame())
        except BaseException as exc:
            self.closed_by = "error"
            if self._ws is not None:
                await self._ws.close()
            self.finished.set()
            if isinstance(exc, websockets.ConnectionClosed):
                raise ConnectionError(f"websocket closed during the handshake: {exc}") from exc
            raise
        self.started.set()

    def _start_frame(self) -> dict[str, Any]:
        return {
            "event": "start",
            "sequenceNumber": self._next_seq(),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": dict(self.parameters),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
            },
            "streamSid": self.stream_sid,
        }

    async def run(self) -> None:
        """Pump frames until the socket closes (by the server, an error or :meth:`stop`)."""
        assert self._ws is not None
        self._sender = asyncio.create_task(self._send_outbox(), name=f"twilio-media-send-{self.stream_sid}")
        self._tasks = [
            self._sender,
            asyncio.create_task(self._player(), name=f"twilio-media-play-{self.stream_sid}"),
        ]
        try:
            async for message in self._ws:
                if not self._handle(message):
                    await self._ws.close(1008, "invalid message")
                    self.closed_by = self.closed_by or "error"
                    break
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed_by = self.closed_by or "server"
            await self._shutdown()

    async def stop(self) -> None:
        """Twilio ends the stream: ``stop`` frame, then close (hang-up or redirect)."""
        ws = self._ws
        if ws is None or self.finished.is_set():
            return
        if self.closed_by is None:
            self.closed_by = "twilio"
            # ``stop`` is the last message Twilio sends on a stream: the sender (media, keys)
            # ends first, so no frame can follow it however the event loop is scheduled.
            if self._sender is not None:
                self._sender.cancel()
                await asyncio.gather(self._sender, return_exceptions=True)
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._send(
                    {
                        "event": "stop",
                        "sequenceNumber": self._next_seq(),
                        "streamSid": self.stream_sid,
                        "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                    }
                )
        await ws.close(1000)
        with contextlib.suppress(TimeoutError):  # run() sets it; never hang a hang-up on it
            await asyncio.wait_for(self.finished.wait(), 15)

    async def _shutdown(self) -> None:
        try:
            for task in self._tasks:
                task.cancel()
            # The sender may already have died on the closed socket: that is fine.
            await asyncio.gather(*self._tasks, return_exceptions=True)
            pending = [*self._outbox, *([self._finishing] if self._finishing else [])]
            for item in pending:
                if not item.done.done():
                    item.done.set_exception(ConnectionError("media stream closed"))
            self._outbox.clear()
            self._finishing = None
            if not self.realtime_playback:
                self._ear_catch_up(self._ear_now())
            for utterance in self._detector.flush():
                self.on_utterance(utterance)
            if self._ws is not None:
                await self._ws.close()
        finally:
            self.finished.set()

    # --- caller → server --------------------------------------------------------

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def _send(self, frame: dict[str, Any]) -> None:
        assert self._ws is not None
        self.sent.append(frame)
        await self._ws.send(json.dumps(frame))

    async def send_audio(self, pcm16: bytes) -> float:
        """Queue caller audio (PCM16 8 kHz); returns once its last frame is on the wire,
        with the monotonic time that frame was written to the socket (for benchmarks)."""
        item = await self._enqueue("audio", speech.pcm16_to_ulaw(pcm16))
        return item.sent_at if item.sent_at is not None else time.monotonic()

    async def send_dtmf(self, digits: str) -> None:
        """Queue one ``dtmf`` event per digit, in order with the audio."""
        for digit in digits:
            await self._enqueue("dtmf", digit)

    async def _enqueue(self, kind: str, data: bytes | str) -> _Outgoing:
        if self.finished.is_set():
            raise ConnectionError("media stream closed")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = _Outgoing(kind, data, done)
        self._outbox.append(item)
        self._wake.set()
        await done
        return item

    def _take_frame(self) -> bytes | str | None:
        """Next 160-byte μ-law frame or DTMF digit from the outbox (None if empty)."""
        while self._outbox:
            item = self._outbox[0]
            if item.kind == "dtmf":
                self._outbox.popleft()
                item.done.set_result(None)
                return str(item.data)
            data = item.data if isinstance(item.data, bytes) else item.data.encode()
            frame = data[item.offset : item.offset + FRAME_BYTES]
            item.offset += FRAME_BYTES
            if item.offset >= len(data):
                self._outbox.popleft()
                if frame:
                    self._finishing = item  # done once this frame is on the wire
                else:
                    item.sent_at = time.monotonic()
                    item.done.set_result(None)
            if frame:
                return frame.ljust(FRAME_BYTES, ULAW_SILENCE)
        return None

    async def _send_media(self, frame: bytes) -> None:
        self._chunk += 1
        await self._send(
            {
                "event": "media",
                "sequenceNumber": self._next_seq(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str((self._chunk - 1) * 20),
                    "payload": base64.b64encode(frame).decode(),
                },
                "streamSid": self.stream_sid,
            }
        )
        finishing, self._finishing = self._finishing, None
        if finishing is not None and not finishing.done.done():
            finishing.sent_at = time.monotonic()
            finishing.done.set_result(None)

    async def _send_digit(self, digit: str) -> None:
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def _send_outbox(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._send_forever()

    async def _send_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            if not self.realtime:
                await self._wake.wait()
                self._wake.clear()
                while (item := self._take_frame()) is not None:
                    if isinstance(item, str):
                        await self._send_digit(item)
                    else:
                        await self._send_media(item)
                    await asyncio.sleep(0)
                continue
            item = self._take_frame()
            while isinstance(item, str):
                await self._send_digit(item)
                item = self._take_frame()
            await self._send_media(item if item is not None else ULAW_SILENCE * FRAME_BYTES)
            next_tick += FRAME_SECONDS
            await asyncio.sleep(max(0.0, next_tick - loop.time()))

    # --- server → caller --------------------------------------------------------

    def _fail(self, code: int, message: str) -> bool:
        self.errors.append((code, message))
        self.on_error(code, message)
        return False

    def _handle(self, message: str | bytes) -> bool:
        """Validate and apply one server frame; False means "close the stream"."""
        if isinstance(message, bytes):
            return self._fail(31924, "binary websocket frame; Media Streams messages are JSON text")
        try:
            frame = json.loads(message)
        except json.JSONDecodeError:
            return self._fail(31924, f"malformed JSON message: {message[:80]!r}")
        if not isinstance(frame, dict):
            return self._fail(31924, f"message is not a JSON object: {message[:80]!r}")
        self.received.append(frame)
        event = frame.get("event")
        if event not in SERVER_EVENTS:
            return self._fail(31924, f"unsupported event {event!r}; only media, mark, clear")
        if frame.get("streamSid") != self.stream_sid:
            return self._fail(31951, f"{event} has streamSid {frame.get('streamSid')!r}, not {self.stream_sid}")
        if event == "media":
            return self._on_media(frame)
        if event == "mark":
            name = (frame.get("mark") or {}).get("name")
            if not isinstance(name, str):
                return self._fail(31951, "mark event without mark.name")
            mark = Mark(name, self._queued_bytes, time.monotonic())
            self.marks.append(mark)
            if self.played_bytes >= mark.position:
                self._echo(mark)
            return True
        self._on_clear()
        return True

    def _on_media(self, frame: dict[str, Any]) -> bool:
        payload = (frame.get("media") or {}).get("payload")
        if not isinstance(payload, str) or not payload:
            return self._fail(31951, "media event without media.payload")
        try:
            audio = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return self._fail(31951, "media.payload is not standard base64")
        if audio[:4] == b"RIFF":
            return self._fail(31951, "media.payload has a WAV header; send raw μ-law 8 kHz")
        self.agent_frames.append(AgentFrame(time.monotonic(), audio))
        self._queued_bytes += len(audio)
        now = time.monotonic()
        if self.realtime_playback:
            if not self._playback:  # idle or underrun: buffer before playing again
                self._play_from = now + JITTER_BUFFER_SECONDS
            self._playback.append(audio)
        else:
            self._play_now(audio, self._ear_now())
        return True

    def _on_clear(self) -> None:
        self.clears += 1
        dropped = sum(len(b) for b in self._playback)
        self._playback.clear()
        self.dropped_bytes += dropped
        self.played_bytes += dropped  # the play head jumps to the end of the queue
        for mark in self.marks:
            if mark.echoed_at is None:
                mark.cleared = True
                self._echo(mark)

    def _echo(self, mark: Mark) -> None:
        mark.echoed_at = time.monotonic()
        frame = {
            "event": "mark",
            "sequenceNumber": self._next_seq(),
            "streamSid": self.stream_sid,
            "mark": {"name": mark.name},
        }
        if self._ws is not None and self.closed_by != "twilio":  # nothing after ``stop``
            self.sent.append(frame)
            task = asyncio.create_task(self._ws.send(json.dumps(frame)))
            self._echoes.add(task)
            task.add_done_callback(self._echo_done)

    def _echo_done(self, task: asyncio.Task[None]) -> None:
        self._echoes.discard(task)
        if not task.cancelled():
            task.exception()  # a closed socket is fine: the stream is ending anyway

    async def _player(self) -> None:
        """Advance the caller's ear every 20 ms: play queued audio, or silence when idle."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        budget = 0.0
        while True:
            await asyncio.sleep(FRAME_SECONDS)
            now = loop.time()
            elapsed, last = now - last, now
            if not self.realtime_playback:
                self._ear_catch_up(self._ear_now())
                continue
            budget += elapsed * RATE
            want = int(budget)
            budget -= want
            played = self._play(want) if time.monotonic() >= self._play_from else b""
            # An empty queue mid-tick is a real underrun: the caller hears silence.
            self._hear(speech.ulaw_to_pcm16(played) + bytes(2 * (want - len(played))))
            for mark in self.marks:
                if mark.echoed_at is None and self.played_bytes >= mark.position:
                    self._echo(mark)

    def _hear(self, pcm16: bytes) -> None:
        for utterance in self._detector.feed(pcm16):
            self.on_utterance(utterance)

    def _ear_now(self) -> float:
        """Instant playback's clock: real time less the host's stalls (``STALL_SECONDS``)."""
        now = time.monotonic()
        late = now - self._ran_at - FRAME_SECONDS
        if late > STALL_SECONDS:
            self._stalled += late
        self._ran_at = now
        return now - self._stalled

    def _ear_catch_up(self, now: float) -> None:
        """Instant playback: time the ear spent with nothing to play is silence."""
        gap = int((now - self._ear_end) * RATE)
        if gap > 0:
            self._hear(bytes(2 * gap))
            self._ear_end += gap / RATE

    def _play_now(self, audio: bytes, now: float) -> None:
        """Instant playback: count ``audio`` as played now, and lay it on the ear's
        timeline at real rate behind a jitter buffer, so late arrivals (pipecat paces at
        about real time; the host may stall) do not cut gaps into the speech."""
        self._ear_catch_up(now)
        if self._ear_end <= now:  # the ear ran dry: start a new talkspurt after the buffer
            self._ear_catch_up(now + INSTANT_JITTER_SECONDS)
        self._ear_end += len(audio) / RATE
        self.played_bytes += len(audio)
        self._hear(speech.ulaw_to_pcm16(audio))

    def _play(self, limit: int | None) -> bytes:
        out = bytearray()
        while self._playback and (limit is None or len(out) < limit):
            chunk = self._playback.popleft()
            room = len(chunk) if limit is None else limit - len(out)
            out += chunk[:room]
            if room < len(chunk):
                self._playback.appendleft(chunk[room:])
        self.played_bytes += len(out)
        return bytes(out)
