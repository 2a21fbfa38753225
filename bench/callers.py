"""Emulated callers: many concurrent calls, each a greeting then turns, timed at the Twilio end.

One turn: the caller sends a 300 ms voiced burst in real-time 20 ms frames (then the line
carries silence, as Twilio's does); the Gemini emulator ends the turn once exactly that
much audio arrived (``end_of_turn_after_bytes``, counted from the first loud sample), waits
its configured ``response_delay_ms`` and answers with one second of speech. Two clocks
give the added latency of the call path, per turn:

* at the Twilio emulator: from the moment the last frame of the caller's burst was
  written to the socket (``MediaStream.send_audio``) to the arrival of the first reply
  frame (``MediaStream.agent_frames``);
* at the Gemini emulator, same process, same monotonic clock: from the arrival of the
  audio that ended the turn to the sending of the reply's first frame
  (``LiveSession.turn_timings``): its own share, the configured delay included.

Added latency = the first minus the second: the server's way in plus its way out. Calls
are matched to Gemini sessions by the greeting, which names the session ("Hello from
session-7."), decoded by the caller's ear.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.upstream import Upstream
from tars.emulators import speech
from tars.emulators.gemini.delivery import TIDY
from tars.emulators.gemini.emulator import GeminiEmulator, LiveSession, Say
from tars.emulators.twilio.emulator import Call, TwilioEmulator
from tars.emulators.twilio.media import FRAME_BYTES, RATE, AgentFrame, MediaStream

ACCOUNT = "AC" + "7" * 32
TOKEN = "bench-auth-token"
API_KEY = "bench-gemini-key"
PUBLIC = "https://bench.example.com"
OWNER = "+447700900123"  # the example project's owner.phone: TARS answers as for the owner
NUMBER = "+447700900999"  # the example project's telephony.number

UTTERANCE_MS = 300
REPLY_BODY_MS = 300  # the reply: 700 ms id preamble + 300 ms body = 1 s of speech
RESPONSE_DELAY_MS = 50
TAIL_HELD_BYTES = RATE * 60 // 1000  # Pipecat's output resampler keeps ~40 ms of a reply's tail
GREETING = re.compile(r"Hello from (session-\d+)")


def utterance(ms: int = UTTERANCE_MS) -> bytes:
    """A voiced burst, PCM16 8 kHz, whole 20 ms frames, loud from its first frame."""
    n = RATE * ms // 1000 // (FRAME_BYTES) * FRAME_BYTES
    t = np.arange(n) / RATE
    wave = sum(np.sin(2 * np.pi * 150.0 * k * t) / k for k in range(1, 8))
    wave = wave / np.max(np.abs(wave)) * 8000
    ramp = np.linspace(0.0, 1.0, RATE * 5 // 1000)
    wave[: len(ramp)] *= ramp
    wave[-len(ramp) :] *= ramp[::-1]
    return np.round(wave).astype("<i2").tobytes()


def turn_bytes(pcm8k: bytes, in_rate: int = 16000) -> int:
    """What the Gemini emulator must count to end a turn on this burst, as a server sends it
    at ``in_rate``: from where the emulator puts the onset (1 ms before the first loud
    sample) to the end, less 1 ms so that resampler rounding cannot push it a frame later."""
    heard = np.frombuffer(speech.ulaw_to_pcm16(speech.pcm16_to_ulaw(pcm8k)), dtype="<i2").astype(np.int32)
    onset = max(0, int(np.flatnonzero(np.abs(heard) >= speech.ONSET_LEVEL)[0]) - RATE // 1000)
    samples = len(heard) - onset - RATE // 1000
    return samples * (in_rate // RATE) * 2


def reply_bytes() -> int:
    """μ-law bytes of one reply (any text: the body length is fixed)."""
    return len(speech.encode("OK.", RATE, REPLY_BODY_MS)) // 2


class BenchBrain:
    """Greets naming its session, then answers every caller turn with one second of speech."""

    def on_start(self, session: LiveSession) -> list[Any]:
        return [Say(f"Hello from {session.id}.")]

    def on_user(self, session: LiveSession, text: str) -> list[Any]:
        return [Say("OK.")]

    def on_tool_result(self, session: LiveSession, name: str, response: dict[str, Any]) -> list[Any]:
        return []


@dataclass
class Turn:
    """One caller turn and the reply, as both emulators saw it (monotonic seconds)."""

    call: int
    index: int
    sent_at: float  # last caller frame written to the socket
    reply: list[AgentFrame]  # the reply's frames as they arrived
    gemini: tuple[float, float] | None = None  # (turn ended at, first reply audio sent at)

    @property
    def interval_ms(self) -> float | None:
        return (self.reply[0].at - self.sent_at) * 1000 if self.reply else None

    @property
    def emulator_ms(self) -> float | None:
        return (self.gemini[1] - self.gemini[0]) * 1000 if self.gemini else None

    @property
    def added_ms(self) -> float | None:
        """Interval less the Gemini emulator's own measured share (None if unmatched)."""
        if self.interval_ms is None or self.emulator_ms is None:
            return None
        return self.interval_ms - self.emulator_ms


@dataclass
class CallRecord:
    index: int
    sid: str = ""
    session: str | None = None
    placed_at: float = 0.0
    connected_at: float | None = None
    greeting_at: float | None = None  # first greeting frame
    ended_at: float | None = None
    turns: list[Turn] = field(default_factory=list)
    error: str | None = None

    @property
    def minutes(self) -> float:
        if self.connected_at is None or self.ended_at is None:
            return 0.0
        return (self.ended_at - self.connected_at) / 60


class Emulators:
    """The Twilio and Gemini emulators for one run, set up for deterministic turns."""

    def __init__(self, response_delay_ms: int = RESPONSE_DELAY_MS):
        self.response_delay_ms = response_delay_ms
        self.steady_from = math.inf  # when the last call of the latest run_calls was greeted
        self._waiting = 0
        self._all_in = asyncio.Event()
        self.burst = utterance()
        self.twilio = TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=True)
        self.gemini = GeminiEmulator(
            api_key=API_KEY,
            brain_factory=BenchBrain,
            response_delay_ms=response_delay_ms,
            pacing=0.0,
            speech_body_ms=REPLY_BODY_MS,
            end_of_turn_after_bytes=turn_bytes(self.burst),
            # Tidy frames, asked for (the emulator is untidy by default, as the service): the run
            # compares TARS with bare Pipecat, which reads only ``parts[0]`` of a message and
            # would lose two thirds of each reply to several parts a message (so its replies
            # never complete), and the figures stay comparable with the earlier runs'.
            **TIDY,
        )

    async def __aenter__(self) -> Emulators:
        # Failures are counted in the results (``errors``), not printed as they happen.
        logging.getLogger("tars.emulators").setLevel(logging.ERROR)
        await self.twilio.start()
        await self.gemini.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.twilio.stop()
        await self.gemini.stop()

    @property
    def errors(self) -> list[str]:
        """What the emulators flagged: Twilio errors, Gemini protocol violations and failures."""
        return [str(e) for e in self.twilio.errors] + [v.reason for v in self.gemini.violations] + self.gemini.errors

    def upstream(self) -> Upstream:
        return Upstream(
            public_url=PUBLIC,
            twilio_base_url=self.twilio.base_url,
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            gemini_base_url=self.gemini.base_url,
            gemini_ca_file=self.gemini.ca_file,
            gemini_api_key=API_KEY,
        )

    def route_to(self, local_url: str) -> None:
        self.twilio.webhooks.routes.clear()
        self.twilio.route(PUBLIC, local_url)

    async def run_calls(
        self, calls: int, turns: int, *, arrivals_per_second: float = 4.0, seed: int = 1, timeout: float = 10.0
    ) -> list[CallRecord]:
        """``calls`` calls arriving at random (``arrivals_per_second`` on average); each is greeted,
        then takes turns until it has taken ``turns`` with every call live (from
        ``steady_from``, when the last call was greeted), then hangs up."""
        rng = random.Random(seed)
        records = [CallRecord(i) for i in range(calls)]
        ramp = calls / arrivals_per_second if calls > 1 else 0.0
        starts = sorted(rng.uniform(0, ramp) for _ in range(calls))
        self._waiting = calls
        self._all_in = asyncio.Event()
        self.steady_from = math.inf
        await asyncio.gather(
            *(self._call(r, turns, start, rng.random, timeout) for r, start in zip(records, starts, strict=True))
        )
        _match_sessions(records, self.gemini.sessions)
        return records

    def _arrived(self) -> None:
        """One more call greeted (or failed): once all are, the steady part begins."""
        self._waiting -= 1
        if self._waiting == 0:
            self.steady_from = time.monotonic()
            self._all_in.set()

    async def _call(self, record: CallRecord, turns: int, start: float, jitter: Any, timeout: float) -> None:
        await asyncio.sleep(start)
        record.placed_at = time.monotonic()
        call: Call | None = None
        arrived = False
        try:
            call = await self.twilio.incoming_call(
                from_=OWNER, to=NUMBER, voice_url=f"{PUBLIC}/twilio/voice", status_callback=f"{PUBLIC}/twilio/status"
            )
            record.sid = call.sid
            stream = await call.wait_for_stream(timeout)
            record.connected_at = time.monotonic()
            expected = reply_bytes()  # the greeting is as long as a reply
            greeting = await wait_for_reply(stream, 0, record.placed_at, expected, timeout)
            record.greeting_at = greeting[0].at
            self._arrived()
            arrived = True
            index = 0
            while not self._all_in.is_set() or sum(t.sent_at >= self.steady_from for t in record.turns) < turns:
                await asyncio.sleep(0.15 + 0.25 * jitter())  # the caller takes a breath
                mark = len(stream.agent_frames)
                sent_at = await stream.send_audio(self.burst)
                reply = await wait_for_reply(stream, mark, sent_at, expected, timeout)
                record.turns.append(Turn(record.index, index, sent_at, reply))
                index += 1
        except (TimeoutError, ConnectionError) as exc:
            record.error = f"{type(exc).__name__}: {exc}"
        finally:
            if not arrived:
                self._arrived()
            if call is not None:
                if not call.ended:
                    await call.hang_up()
                heard = next((GREETING.search(u.text) for u in call.heard), None)
                record.session = heard.group(1) if heard else None
            record.ended_at = time.monotonic()


async def wait_for_reply(
    stream: MediaStream, mark: int, after: float, expected: int | None, timeout: float
) -> list[AgentFrame]:
    """The reply's frames, once it has arrived and played out (as a listener would hear it
    end): all of it (``expected`` bytes, less what a resampler may hold back), or whatever
    came before the line went quiet for a second (a stalled server, or no ``expected``)."""
    deadline = after + timeout
    enough = None if expected is None else expected - TAIL_HELD_BYTES
    while True:
        now = time.monotonic()
        frames = [f for f in stream.agent_frames[mark:] if f.at > after]
        if frames:
            got = sum(len(f.payload) for f in frames)
            quiet = now - frames[-1].at
            played = now >= frames[0].at + got / RATE
            if played and (quiet >= 1.0 or (enough is not None and got >= enough and quiet >= 0.1)):
                return frames
        if now > deadline:
            raise TimeoutError(f"no complete reply within {timeout:.0f} s ({len(frames)} frames)")
        if stream.finished.is_set():
            raise ConnectionError("the media stream closed")
        await asyncio.sleep(0.01)


def _fits(turn: Turn, timing: tuple[float, float]) -> bool:
    heard_at, sent_at = timing
    return bool(turn.reply) and turn.sent_at - 0.005 <= heard_at <= sent_at <= turn.reply[0].at


def _match_sessions(records: Sequence[CallRecord], sessions: Sequence[LiveSession]) -> None:
    """Pair each call's turns with its Gemini session's ``turn_timings``, in order.

    The session is the one the greeting named; if the ear could not read the greeting, the
    one session left whose every turn fits this call's turns on the clock, if exactly one does.
    """
    by_id = {s.id: s for s in sessions}
    unclaimed = {s.id for s in sessions} - {r.session for r in records if r.session}
    for record in sorted(records, key=lambda r: r.session is None):
        if record.session is None and record.turns:
            fitting = [
                i
                for i in unclaimed
                if len(by_id[i].turn_timings) == len(record.turns)
                and all(map(_fits, record.turns, by_id[i].turn_timings))
            ]
            if len(fitting) == 1:
                record.session = fitting[0]
                unclaimed.discard(fitting[0])
        session = by_id.get(record.session or "")
        if session is None:
            continue
        for turn, timing in zip(record.turns, session.turn_timings, strict=False):
            if _fits(turn, timing):
                turn.gemini = timing
