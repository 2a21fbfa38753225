"""Audio between Twilio's 8 kHz μ-law and Gemini Live, without the resampler's queue.

Pipecat's ``TwilioFrameSerializer`` resamples with soxr's stream resampler at "VHQ",
whose filter holds audio back: about 95 ms on the way in (the end of the caller's turn
reaches Gemini that much later) and about 137 ms on the way out (a reply's first frame
waits for that much audio). Every millisecond there is a millisecond of silence on the
phone before TARS answers.

The rates on a call are fixed and related by small integers (8 kHz ⇄ 16 kHz in, 24 kHz →
8 kHz out), so a short windowed-sinc FIR applied in polyphase form does the job with
about 3 ms of delay. Telephone audio is band-limited to 300-3,400 Hz, so the filter only
has to pass that band and stop the images/aliases above 4 kHz (≥ 60 dB down).

Input audio is also gathered into 40 ms frames: every frame crosses the whole pipeline
and the Live websocket, so Twilio's 20 ms frames one by one would cost about twice the
CPU for at most 20 ms sooner.
"""

from __future__ import annotations

import binascii
import json
import logging
import math
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

import numpy as np
from pipecat.audio.resamplers.base_audio_resampler import BaseAudioResampler
from pipecat.frames.frames import Frame, InputAudioRawFrame, InterruptionFrame, OutputAudioRawFrame
from pipecat.serializers.twilio import TwilioFrameSerializer

from tars.calls.turn_clock import STAMP, TurnClock

log = logging.getLogger("tars.calls")

TAPS_PER_PHASE = 48  # filter length in low-rate samples: 48 at 8 kHz = 6 ms wide, 3 ms of delay
STOPBAND_DB = 70.0
INPUT_FRAME_SECONDS = 0.04
MAX_FACTOR = 12  # beyond this (unusual rate pairs) use soxr


@cache
def lowpass(up: int, down: int) -> np.ndarray:
    """The FIR for resampling by up/down: cutoff at the lower Nyquist, gain ``up``.

    Kaiser-windowed sinc, ``TAPS_PER_PHASE * max(up, down)`` taps at the upsampled rate.
    The cutoff sits a little below the lower Nyquist frequency so the transition band
    ends there: nothing folds back into the telephone band.
    """
    factor = max(up, down)
    length = TAPS_PER_PHASE * factor
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    # Kaiser's estimate of the transition width (as a fraction of the upsampled rate)
    width = (STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * (length - 1))
    cutoff = 0.5 / factor - width / 2
    n = np.arange(length) - (length - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(length, beta)
    taps *= up / taps.sum()
    return taps.astype(np.float32)


class LowLatencyResampler(BaseAudioResampler):
    """Streaming rational resampler (polyphase FIR), ~3 ms of delay, state kept between chunks.

    Input chunks of any length; the output length is exactly in * up / down over the
    stream (no chunk is held back to fill a block). Rates whose ratio needs factors
    above ``MAX_FACTOR`` go to soxr instead.

    The filter runs in polyphase form, so no multiply is spent on a stuffed zero or on an
    output that decimation throws away: upsampling by ``up`` is ``up`` short convolutions of
    the input (``np.convolve``, in C), interleaved, and no stuffed zero is multiplied. Per
    chunk: ~35 µs for 20 ms of 8 kHz → 16 kHz, ~50 µs for 40 ms of 24 kHz → 8 kHz (soxr's
    VHQ stream: ~25 µs; the first version of this class, zero-stuffing and gathering
    windows: ~110-130 µs).
    """

    def __init__(self, tap: Callable[[bytes], None] | None = None) -> None:
        self._tap = tap  # handed every chunk this resampler puts out (a recording)
        self._rates: tuple[int, int] | None = None
        self._up = self._down = 1
        self._phases = np.ones((1, 1), dtype=np.float32)  # row p: the taps of output phase p
        self._history = np.zeros(0, dtype=np.float32)  # the last input samples the filter still needs
        self._phase = 0  # where the next output sample falls in the upsampled stream
        self._fallback: BaseAudioResampler | None = None

    def _prepare(self, in_rate: int, out_rate: int) -> None:
        if self._rates == (in_rate, out_rate):
            return
        if self._rates is not None:
            raise ValueError(f"resampler set up for {self._rates[0]}→{self._rates[1]} Hz, got {in_rate}→{out_rate} Hz")
        self._rates = (in_rate, out_rate)
        common = math.gcd(in_rate, out_rate)
        self._up, self._down = out_rate // common, in_rate // common
        if max(self._up, self._down) > MAX_FACTOR:
            from pipecat.audio.resamplers.soxr_stream_resampler import SOXRStreamAudioResampler

            self._fallback = SOXRStreamAudioResampler(clear_after_secs=None)
            return
        taps = lowpass(self._up, self._down)
        per_phase = -(-len(taps) // self._up)
        padded = np.zeros(per_phase * self._up, dtype=np.float32)
        padded[: len(taps)] = taps
        self._phases = np.ascontiguousarray(padded.reshape(per_phase, self._up).T)
        self._history = np.zeros(per_phase - 1, dtype=np.float32)

    async def resample(self, audio: bytes, in_rate: int, out_rate: int) -> bytes:
        if in_rate == out_rate or not audio:
            return audio
        self._prepare(in_rate, out_rate)
        if self._fallback is not None:
            out = await self._fallback.resample(audio, in_rate, out_rate)
        else:
            out = self._run(np.frombuffer(audio, dtype=np.int16).astype(np.float32))
        if self._tap is not None and out:
            self._tap(out)
        return out

    def _run(self, samples: np.ndarray) -> bytes:
        up, down = self._up, self._down
        held = len(self._history)
        signal = np.concatenate((self._history, samples))
        self._history = signal[len(signal) - held :]
        # Upsampled output m = n * up + p (n: the n-th new input sample) is phase p's filter
        # over the input up to sample n; with ``held`` samples of history in front, a "valid"
        # convolution gives exactly one value per new sample. Outputs are every ``down``-th m,
        # from the phase carried over from the last chunk.
        produced = len(samples) * up
        first, self._phase = self._phase, (self._phase - produced) % down
        if first >= produced:
            return b""
        if up == 1:
            out = np.convolve(signal, self._phases[0], "valid")[first::down]
        else:
            stream = np.empty((len(samples), up), dtype=np.float32)
            for p in range(up):
                stream[:, p] = np.convolve(signal, self._phases[p], "valid")
            out = stream.ravel()[first::down]
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16).tobytes()

    async def flush(self) -> bytes:
        """The audio still in the filter (its last ~3 ms), then a clean start."""
        if self._fallback is not None:
            return await self._fallback.flush()
        if self._rates is None:
            return b""
        tail = self._run(np.zeros(len(self._history), dtype=np.float32))
        await self.reset()
        return tail

    async def reset(self) -> None:
        if self._fallback is not None:
            await self._fallback.reset()
        self._history[:] = 0
        self._phase = 0


class GatheredResampler(LowLatencyResampler):
    """Resamples at once, hands the audio on ``seconds`` at a time (``b""`` meanwhile: no frame)."""

    def __init__(self, seconds: float = INPUT_FRAME_SECONDS, heard: Callable[[bytes], None] | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self._heard = heard  # handed every chunk before it is resampled (a recording)
        self._held = bytearray()

    async def resample(self, audio: bytes, in_rate: int, out_rate: int) -> bytes:
        if self._heard is not None and audio:
            self._heard(audio)
        self._held += await super().resample(audio, in_rate, out_rate)
        if len(self._held) < int(out_rate * self.seconds) * 2:
            return b""
        out = bytes(self._held)
        self._held.clear()
        return out

    async def reset(self) -> None:
        self._held.clear()
        await super().reset()


#: A Twilio media message carries 20 ms of 8 kHz mu-law (160 bytes, ~220 base64) in a few
#: hundred bytes of JSON; anything this large is not one.
MAX_MEDIA_MESSAGE = 64 * 1024


class LineTap(Protocol):
    """Where a recording takes the line's audio (``tars.calls.recording.CallRecording``): each
    call only queues, the audio path never waits for it."""

    def caller(self, pcm: bytes) -> None: ...  # PCM16 at 8 kHz, as it arrived from Twilio

    def assistant(self, pcm: bytes) -> None: ...  # PCM16 at 8 kHz, as it is sent to Twilio

    def cleared(self) -> None: ...  # Twilio is told to drop the audio it has not played


class PhoneLineSerializer(TwilioFrameSerializer):
    """Pipecat's Twilio serializer with TARS's low-latency resamplers, and one bad message
    (invalid base64, a numeric payload, ``dtmf: null``, a huge or non-object message)
    logged and skipped: the call goes on. Twilio itself treats a malformed message on a
    stream the same way, warning once and carrying on (warnings 31950 and 31951,
    https://www.twilio.com/docs/api/errors/31951)."""

    def __init__(
        self, *args: Any, clock: TurnClock | None = None, recording: LineTap | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # With a recording, the line's 8 kHz audio is handed to it where it exists: the
        # caller's before it is resampled up for Gemini, TARS's after it is resampled down.
        self.recording = recording
        self._input_resampler = GatheredResampler(heard=recording.caller if recording else None)
        self._output_resampler = LowLatencyResampler(tap=recording.assistant if recording else None)
        self.skipped = 0  # bad messages skipped on this call
        self.clock = clock  # times the audio's way through the call (tars.calls.turn_clock)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if self.recording is not None and isinstance(frame, InterruptionFrame):
            self.recording.cleared()  # the serializer answers it with Twilio's `clear`
        data = await super().serialize(frame)
        if data is not None and self.clock is not None and isinstance(frame, OutputAudioRawFrame):
            self.clock.reply_audio_sent()
        return data

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if len(data) > MAX_MEDIA_MESSAGE:
            return self._skip(f"a {len(data)}-byte message (at most {MAX_MEDIA_MESSAGE})")
        try:
            message = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return self._skip("a message that is not JSON")
        if not isinstance(message, dict):
            return self._skip("a message that is not a JSON object")
        event = message.get("event")
        body = message.get(event) if isinstance(event, str) else None
        if event in ("media", "dtmf") and not isinstance(body, dict):
            return self._skip(f"a {event} message without its {event} object")
        if event == "media" and not isinstance(body.get("payload"), str):  # type: ignore[union-attr]
            return self._skip("a media payload that is not a string")
        if event == "dtmf" and not isinstance(body.get("digit"), str):  # type: ignore[union-attr]
            return self._skip("a dtmf message without a digit")
        try:
            frame = await super().deserialize(data)
        except (binascii.Error, ValueError, TypeError) as exc:
            return self._skip(f"a {event} message that cannot be decoded ({exc})")
        if self.clock is not None and isinstance(frame, InputAudioRawFrame):
            frame.metadata[STAMP] = self.clock.received()
        return frame

    def _skip(self, what: str) -> None:
        self.skipped += 1
        if self.skipped <= 3 or self.skipped % 1000 == 0:  # a flood of bad frames is not a flood of logs
            log.warning("media stream: skipped %s (%d so far on this call)", what, self.skipped)
        return None
