"""Synthetic speech: deterministic "speech-like" audio that carries an utterance id.

The loopback emulators need to talk to each other through real audio paths:
the Twilio emulator's caller speaks μ-law 8 kHz, pipecat resamples it to 16 kHz
for Gemini; Gemini answers in 24 kHz PCM that pipecat turns into μ-law 8 kHz for
Twilio. Neither side can run a speech recogniser, so every utterance is tagged:

* **Preamble (id):** 6 hex digits plus 1 checksum digit, each a DTMF-style dual
  tone (a 4x4 grid of 697..941 Hz x 1209..1633 Hz, so all 16 hex digits map to
  a tone pair) of ``TONE_MS`` followed by ``GAP_MS`` of silence. All tones sit
  well under 4 kHz, so they survive 8 kHz telephony, μ-law and resampling.
* **Body:** amplitude-modulated harmonics of 150 Hz (150..1050 Hz), about
  ``CHARS_PER_SECOND`` characters per second of text, at least ``MIN_BODY_MS``.
  Its energy keeps an energy VAD (ours or anyone's) in "speech" throughout.

``encode`` registers ``uid -> text`` in a process-wide registry, so a
``SpeechDetector`` in the same process returns the original text. In another
process (or for audio that was not made by ``encode``) the text is
``"[speech N.Ns]"`` with the measured duration.

Decoding finds the onset of the utterance (first loud sample), then measures the
tone pair in the middle of each symbol slot with a single-bin DFT (Goertzel) on a
window ``ANALYSIS_MS`` long, which tolerates ±10 ms of onset jitter. The checksum
rejects anything that is not one of our preambles.

Public API (other emulators rely on it; keep it stable)::

    encode(text, rate, body=None) -> bytes  # PCM16 LE mono (body: fixed voiced ms)
    silence(ms, rate) -> bytes
    Utterance(text, uid, duration_ms)
    SpeechDetector(rate, end_silence_ms=500, threshold=...)
        .feed(pcm16) -> list[Utterance]; .flush() -> list[Utterance]; .speaking
    lookup(uid) -> str | None
    pcm16_to_ulaw(pcm) -> bytes; ulaw_to_pcm16(ulaw) -> bytes   # G.711, numpy
"""

from __future__ import annotations

import functools
import hashlib
import threading
from typing import NamedTuple

import numpy as np

LOW_HZ: tuple[float, ...] = (697.0, 770.0, 852.0, 941.0)
HIGH_HZ: tuple[float, ...] = (1209.0, 1336.0, 1477.0, 1633.0)
ID_DIGITS = 6
SYMBOLS = ID_DIGITS + 1  # id digits + checksum digit
TONE_MS = 60
GAP_MS = 40
SLOT_MS = TONE_MS + GAP_MS
ANALYSIS_OFFSET_MS = 10
ANALYSIS_MS = 40
TONE_AMPLITUDE = 5000.0  # per tone; the pair peaks at ~10000 (about -10 dBFS)
BODY_AMPLITUDE = 8000.0
BODY_F0_HZ = 150.0
BODY_HARMONICS = 7  # 150..1050 Hz
CHARS_PER_SECOND = 12.0
MIN_BODY_MS = 300
FRAME_MS = 10
DEFAULT_THRESHOLD = 300.0  # RMS of a 10 ms frame (PCM16 units), about -40 dBFS
ONSET_LEVEL = 1000.0  # |sample| marking the first sample of an utterance

_registry: dict[str, str] = {}
_by_text: dict[str, str] = {}
_lock = threading.Lock()


class Utterance(NamedTuple):
    """One detected utterance: decoded text, its id (None if not ours), length."""

    text: str
    uid: str | None
    duration_ms: int


def _checksum(digits: str) -> int:
    return sum((i + 1) * int(d, 16) for i, d in enumerate(digits)) % 16


def _register(text: str) -> str:
    """Give ``text`` a stable 6-hex-digit id (hash based, probing on collision)."""
    with _lock:
        known = _by_text.get(text)
        if known is not None:
            return known
        value = int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:ID_DIGITS], 16)
        while True:
            uid = f"{value:0{ID_DIGITS}x}"
            if uid not in _registry:
                break
            value = (value + 1) % (16**ID_DIGITS)
        _registry[uid] = text
        _by_text[text] = uid
        return uid


def lookup(uid: str) -> str | None:
    """Text registered for ``uid`` in this process, if any."""
    with _lock:
        return _registry.get(uid)


def _samples(ms: float, rate: int) -> int:
    return round(rate * ms / 1000.0)


def _tone_pair(digit: int, rate: int) -> np.ndarray:
    n = _samples(TONE_MS, rate)
    t = np.arange(n) / rate
    lo, hi = LOW_HZ[digit // 4], HIGH_HZ[digit % 4]
    wave = np.sin(2 * np.pi * lo * t) + np.sin(2 * np.pi * hi * t)
    ramp = min(_samples(3, rate), n // 2)  # 3 ms fades avoid clicks (splatter)
    if ramp:
        fade = np.linspace(0.0, 1.0, ramp)
        wave[:ramp] *= fade
        wave[-ramp:] *= fade[::-1]
    return wave * TONE_AMPLITUDE


def body_ms(text: str) -> int:
    """Length of the voiced body for ``text``."""
    return max(MIN_BODY_MS, round(len(text.strip()) * 1000.0 / CHARS_PER_SECOND))


def _body(text: str, rate: int, ms: int | None = None) -> np.ndarray:
    n = _samples(max(MIN_BODY_MS, ms) if ms is not None else body_ms(text), rate)
    t = np.arange(n) / rate
    wave = np.zeros(n)
    for k in range(1, BODY_HARMONICS + 1):
        wave += np.sin(2 * np.pi * BODY_F0_HZ * k * t) / k
    wave /= np.max(np.abs(wave)) or 1.0
    # Syllable-rate modulation (4 Hz) that never drops below 55 % amplitude.
    envelope = 0.55 + 0.45 * np.sin(np.pi * 4.0 * t) ** 2
    ramp = min(_samples(5, rate), n // 2)
    if ramp:
        fade = np.linspace(0.0, 1.0, ramp)
        envelope[:ramp] *= fade
        envelope[-ramp:] *= fade[::-1]
    return wave * envelope * BODY_AMPLITUDE


def encode(text: str, rate: int, body: int | None = None) -> bytes:
    """Register ``text`` and return its synthetic speech as PCM16 LE mono at ``rate``.

    ``body``: the voiced body's length in ms (at least ``MIN_BODY_MS``) instead of one
    that grows with the text; brief speech keeps real-time playback short in simulations.
    """
    _register(text)
    return _encode(text, rate, body)


@functools.lru_cache(maxsize=256)
def _encode(text: str, rate: int, body: int | None) -> bytes:
    uid = _register(text)
    digits = [int(d, 16) for d in uid] + [_checksum(uid)]
    gap = np.zeros(_samples(GAP_MS, rate))
    parts: list[np.ndarray] = []
    for d in digits:
        parts.append(_tone_pair(d, rate))
        parts.append(gap)
    parts.append(_body(text, rate, body))
    audio = np.concatenate(parts)
    return np.clip(np.round(audio), -32768, 32767).astype("<i2").tobytes()


def silence(ms: int, rate: int) -> bytes:
    """``ms`` milliseconds of digital silence, PCM16 at ``rate``."""
    return bytes(2 * _samples(ms, rate))


def duration_ms(pcm16: bytes, rate: int) -> int:
    """Duration of a PCM16 mono buffer in milliseconds."""
    return int(len(pcm16) // 2 * 1000 // rate)


# --- G.711 μ-law (same tables as audioop, without the deprecated module) ---

_ULAW_BIAS = 0x84
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def pcm16_to_ulaw(pcm16: bytes) -> bytes:
    """PCM16 LE -> G.711 μ-law bytes (bit-identical to ``audioop.lin2ulaw``)."""
    v = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2").astype(np.int32) >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), 8159) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, v)
    uval = np.where(seg >= 8, 0x7F, (seg << 4) | ((v >> (seg + 1)) & 0x0F))
    return (uval ^ mask).astype(np.uint8).tobytes()


def ulaw_to_pcm16(ulaw: bytes) -> bytes:
    """G.711 μ-law -> PCM16 LE (bit-compatible with ``audioop.ulaw2lin``)."""
    u = ~np.frombuffer(ulaw, dtype=np.uint8).astype(np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    mag = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(sign != 0, -mag, mag).astype("<i2").tobytes()


# --- detection -------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _tone_basis(n: int, rate: int) -> np.ndarray:
    """``exp(-jωk)`` for the 8 tone frequencies (rows) over ``n`` samples."""
    freqs = np.array(LOW_HZ + HIGH_HZ)[:, None]
    return np.exp(-2j * np.pi * freqs / rate * np.arange(n)[None, :])


def _tone_powers(window: np.ndarray, rate: int) -> np.ndarray:
    """Power of ``window`` at every tone frequency: |single-bin DFT|², what a Goertzel filter
    finds, for all eight at once."""
    return np.abs(_tone_basis(len(window), rate) @ window) ** 2


def _classify(window: np.ndarray, rate: int) -> int | None:
    """Hex digit whose tone pair dominates ``window``, or None."""
    energy = float(np.dot(window, window))
    if energy <= 0.0:
        return None
    n = len(window)
    powers = _tone_powers(window, rate).tolist()
    lows, highs = powers[: len(LOW_HZ)], powers[len(LOW_HZ) :]
    lo_i, hi_i = int(np.argmax(lows)), int(np.argmax(highs))
    # For a pure sinusoid 2*P/(N*E) is its share of the window's energy.
    share = 2.0 * (lows[lo_i] + highs[hi_i]) / (n * energy)
    if share < 0.6:
        return None
    lo_rest = max(p for i, p in enumerate(lows) if i != lo_i)
    hi_rest = max(p for i, p in enumerate(highs) if i != hi_i)
    if lows[lo_i] < 4.0 * lo_rest or highs[hi_i] < 4.0 * hi_rest:
        return None
    return lo_i * 4 + hi_i


def decode_id(pcm16: bytes, rate: int) -> str | None:
    """Read the id preamble from the start of an utterance (None if absent/corrupt)."""
    x = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2").astype(np.float64)
    loud = np.flatnonzero(np.abs(x) >= ONSET_LEVEL)
    if not len(loud):
        return None
    onset = int(loud[0])
    # The 3 ms fade-in means the threshold is crossed ~1 ms after the true start.
    onset = max(0, onset - _samples(1, rate))
    n = _samples(ANALYSIS_MS, rate)
    digits: list[int] = []
    for k in range(SYMBOLS):
        start = onset + _samples(k * SLOT_MS + ANALYSIS_OFFSET_MS, rate)
        window = x[start : start + n]
        if len(window) < n:
            return None
        digit = _classify(window, rate)
        if digit is None:
            return None
        digits.append(digit)
    uid = "".join(f"{d:x}" for d in digits[:ID_DIGITS])
    if _checksum(uid) != digits[ID_DIGITS]:
        return None
    return uid


def describe(pcm16: bytes, rate: int) -> Utterance:
    """Decode one complete utterance buffer (speech only, any leading silence ok)."""
    uid = decode_id(pcm16, rate)
    x = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2")
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) >= ONSET_LEVEL)
    samples = int(loud[-1] - loud[0] + 1) if len(loud) else len(x)
    ms = round(samples * 1000 / rate)
    text = lookup(uid) if uid is not None else None
    return Utterance(text if text is not None else f"[speech {ms / 1000:.1f}s]", uid, ms)


class SpeechDetector:
    """Streaming energy VAD with end-of-speech detection and id decoding.

    Audio is cut into ``FRAME_MS`` frames; a frame whose RMS is at least
    ``threshold`` is speech. An utterance starts at the first speech frame and
    ends once ``end_silence_ms`` of non-speech frames follow it; ``feed``
    returns the utterances that ended inside the chunk it was given.
    ``speaking`` is True from the first speech frame until the end is detected,
    which is what barge-in logic wants.
    """

    def __init__(self, rate: int, end_silence_ms: int = 500, threshold: float = DEFAULT_THRESHOLD):
        self.rate = rate
        self.end_silence_ms = end_silence_ms
        self.threshold = threshold
        self.speaking = False
        self._frame_bytes = 2 * _samples(FRAME_MS, rate)
        self._pending = b""
        self._preroll = b""  # last frame before onset, in case the onset straddles frames
        self._speech = bytearray()  # utterance audio up to the last speech frame
        self._tail = bytearray()  # non-speech frames after the last speech frame
        self._silent_ms = 0

    def feed(self, pcm16: bytes) -> list[Utterance]:
        """Consume PCM16 audio; return utterances whose end was detected now."""
        data = self._pending + pcm16
        out: list[Utterance] = []
        step = self._frame_bytes
        whole = len(data) // step * step
        self._pending = data[whole:]
        if not whole:
            return out
        # Every frame's loudness at once (RMS >= threshold, squared on both sides).
        x = np.frombuffer(data[:whole], dtype="<i2").astype(np.float64).reshape(-1, step // 2)
        loud = (np.einsum("ij,ij->i", x, x) >= self.threshold * self.threshold * (step // 2)).tolist()
        for k, i in enumerate(range(0, whole, step)):
            done = self._frame(data[i : i + step], loud[k])
            if done is not None:
                out.append(done)
        return out

    def flush(self) -> list[Utterance]:
        """Force-end the current utterance, if any."""
        if self._pending and self.speaking:
            self._tail += self._pending
        self._pending = b""
        if not self.speaking:
            return []
        return [self._finish()]

    def _frame(self, frame: bytes, loud: bool) -> Utterance | None:
        if not self.speaking:
            if loud:
                self.speaking = True
                self._speech = bytearray(self._preroll + frame)
                self._tail = bytearray()
                self._silent_ms = 0
            self._preroll = frame
            return None
        if loud:
            self._speech += self._tail
            self._speech += frame
            self._tail = bytearray()
            self._silent_ms = 0
            return None
        self._tail += frame
        self._silent_ms += FRAME_MS
        if self._silent_ms >= self.end_silence_ms:
            return self._finish()
        return None

    def _finish(self) -> Utterance:
        audio = bytes(self._speech)
        self.speaking = False
        self._speech = bytearray()
        self._tail = bytearray()
        self._silent_ms = 0
        self._preroll = b""
        return describe(audio, self.rate)
