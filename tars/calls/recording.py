"""Recording a call's audio: both sides, in time, as a stereo 8 kHz WAV, off the audio path.

The audio is taken where the phone line's 8 kHz exists already, in the Twilio serializer
(``tars.calls.audio``): the caller's before it is resampled up for Gemini, TARS's after it
is resampled down for Twilio. The serializer hands each chunk over with the time it passed
(``caller``, ``assistant``, ``cleared``: a put on a queue, nothing more) and one writer
thread per call lays the chunks on a timeline and writes the file, so the call's audio
never waits for a disk.

How the timeline is laid (``Timeline``), in samples of the call's own clock, which is the
caller's stream: Twilio sends 20 ms of the caller every 20 ms from the moment the stream
starts, silence included, so sample n of it was captured n/8000 s after the start.

* **the caller (left channel)** is their stream, chunk after chunk. A chunk arriving more
  than ``SLACK`` later than the stream's clock says (an emulator that sends only speech,
  or a stream held up that long) starts where the clock says, after silence: a stream
  held up for longer than ``SLACK`` makes the recording that much longer than the call,
  never out of step;
* **the clock**: audio held up on its way (while the server was busy setting the call up,
  Twilio's frames wait in the socket and then arrive together) arrives late, never early,
  so the chunk that arrived with the least delay tells where the stream's start lies on
  the server's clock (``Timeline.origin``); TARS's audio is placed by it;
* **TARS (right channel)** is what Twilio plays: a chunk starts when it reaches Twilio, or
  when the audio queued before it has played (or a moment before it arrived, if it is
  within ``JITTER`` of that: a jitter buffer plays a talkspurt without gaps). A ``clear``
  (the caller barged in) drops what was queued but not yet played, as Twilio does;
* both channels are padded with silence to the same length, so they cover the same
  wall-clock span: the recording is as long as the call's stream.

Samples more than ``HOLD`` behind the clock can no longer change and are written out, so
a long call is never held in memory. A stream that continues the call after a keypad
handover appends to the same file (the pause between the streams is left out).

Pipecat's ``AudioBufferProcessor`` (pipecat.processors.audio.audio_buffer_processor) also
records both tracks, but does not fit: it is a pipeline stage, so every audio frame of the
call would take one more hop through a queue (TARS keeps those off the call path, see
``tars.calls.recorder.TranscriptTap``); it records pipecat's 16 and 24 kHz frames and
resamples them again to 8 kHz with soxr's VHQ stream resampler, whose delay differs per
track (about 95 ms at 16 kHz, 137 ms at 24 kHz), shifting one side against the other; it
keeps reply audio that Twilio dropped on a ``clear``; and it hands the audio to handlers on
the event loop, so writing the file off the audio path would be ours to do anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

log = logging.getLogger("tars.calls")

RATE = 8000
CHANNELS = 2
SAMPLE_BYTES = 2
#: Caller audio arriving this much later than the stream's clock says still continues it
#: (jitter, a busy moment); later than that, it starts where the clock says, after silence.
SLACK = int(0.5 * RATE)
#: TARS's audio arriving up to this long after the audio before it has played still follows
#: it without a gap, as a jitter buffer plays a talkspurt.
JITTER = int(0.2 * RATE)
#: Samples this far behind the clock are final: written out.
HOLD = RATE
#: Write when at least this much is final (samples).
WRITE_EVERY = RATE // 2
HEADER_BYTES = 44

_CALLER, _ASSISTANT, _CLEARED, _END = range(4)


def recordings_folder(state_dir: Path) -> Path:
    return state_dir / "recordings"


def recording_file(state_dir: Path, call_id: int) -> Path:
    """Where call ``call_id``'s recording is written."""
    return recordings_folder(state_dir) / f"call-{call_id}.wav"


class Timeline:
    """Both tracks from ``base`` (the samples before it are written out), PCM16 each.

    Times given (``at``) are samples on the server's clock since the recording started;
    positions are samples on the stream's clock: ``position = at - origin``.
    """

    def __init__(self) -> None:
        self.base = 0
        self.tracks = (bytearray(), bytearray())  # caller, assistant: samples base.. as bytes
        self.ends = [0, 0]  # where each track's audio ends
        self.origin: int | None = None  # where the stream's start lies on the server's clock

    def position(self, at: int) -> int:
        return at - (self.origin or 0)

    def caller(self, at: int, pcm: bytes) -> None:
        length = len(pcm) // SAMPLE_BYTES
        start = self.ends[0]
        if self.origin is None:
            self.origin = at - length - start
        elif self.position(at) - length - start > SLACK:
            start = self.position(at) - length
        self._put(0, start, pcm)
        self.origin = min(self.origin, at - self.ends[0])  # it arrived this late, at least

    def assistant(self, at: int, pcm: bytes) -> None:
        arrives = self.position(at)
        self._put(1, arrives if arrives - self.ends[1] > JITTER else self.ends[1], pcm)

    def cleared(self, at: int) -> None:
        """What was queued to play after ``at`` is dropped."""
        cut = max(self.position(at), self.base)
        if self.ends[1] > cut:
            del self.tracks[1][(cut - self.base) * SAMPLE_BYTES :]
            self.ends[1] = cut

    def _put(self, track: int, start: int, pcm: bytes) -> None:
        start = max(start, self.base)
        buffer = self.tracks[track]
        have = self.base + len(buffer) // SAMPLE_BYTES
        if start > have:
            buffer.extend(bytes((start - have) * SAMPLE_BYTES))
        elif start < have:  # never as the tracks are laid (a chunk starts at or after the end)
            del buffer[(start - self.base) * SAMPLE_BYTES :]
        buffer.extend(pcm[: len(pcm) - len(pcm) % SAMPLE_BYTES])
        self.ends[track] = start + len(pcm) // SAMPLE_BYTES

    def take(self, upto: int) -> bytes:
        """The stereo frames from ``base`` to ``upto`` (silence where a track has nothing)."""
        count = upto - self.base
        if count <= 0:
            return b""
        frames = np.zeros((count, CHANNELS), dtype="<i2")
        for channel, buffer in enumerate(self.tracks):
            have = min(len(buffer) // SAMPLE_BYTES, count)
            frames[:have, channel] = np.frombuffer(buffer, dtype="<i2", count=have)
            del buffer[: have * SAMPLE_BYTES]
        self.base = upto
        self.ends = [max(end, upto) for end in self.ends]
        return frames.tobytes()

    def end(self, at: int) -> bytes:
        """Everything left, to the later of now and the caller's end: what was queued to
        play after the call ended was never heard."""
        return self.take(max(self.position(at), self.ends[0], self.base))

    def final(self, at: int) -> int:
        """Up to where nothing can change any more (``HOLD`` behind the clock)."""
        return self.position(at) - HOLD


def _header(data_bytes: int) -> bytes:
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, CHANNELS, RATE,
        RATE * CHANNELS * SAMPLE_BYTES, CHANNELS * SAMPLE_BYTES, SAMPLE_BYTES * 8, b"data", data_bytes,
    )  # fmt: skip


def _ours(head: bytes) -> bool:
    """A WAV this module wrote (so another stream of the call may append to it)."""
    return len(head) == HEADER_BYTES and head[:4] == b"RIFF" and head[8:40] == _header(0)[8:40]


def private_folder(folder: Path) -> None:
    """``folder`` (and its parents) exists, readable by the owner only (0700)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


class CallRecording:
    """One call's recording (``path``): ``start()``, then the serializer's taps, then ``close()``.

    The taps only queue (thread-safe, never blocking); the writer thread does the rest. A
    disk that fails is logged once and the call goes on unrecorded from there.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic):
        self.path = path
        self.clock = clock
        self.seconds = 0.0  # the length written, once closed
        self.failed: str | None = None
        self._queue: queue.SimpleQueue[tuple[int, float, bytes]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    # ------------------------------------------------------------------ the serializer's taps
    def caller(self, pcm: bytes) -> None:
        """The caller's audio (PCM16, 8 kHz) as it arrived."""
        if self.failed is None:
            self._queue.put((_CALLER, self.clock(), pcm))

    def assistant(self, pcm: bytes) -> None:
        """TARS's audio (PCM16, 8 kHz) as it was sent to Twilio."""
        if self.failed is None:
            self._queue.put((_ASSISTANT, self.clock(), pcm))

    def cleared(self) -> None:
        """Twilio was told to drop the audio it had not played yet (``clear``)."""
        self._queue.put((_CLEARED, self.clock(), b""))

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        self._started = self.clock()
        self._thread = threading.Thread(target=self._write, name=f"recording {self.path.name}", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Write the rest and finish the file; returns once it is on disk."""
        if self._thread is None:
            return
        self._queue.put((_END, self.clock(), b""))
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    # ------------------------------------------------------------------ the writer thread
    def _write(self) -> None:
        try:
            self._write_all()
        except Exception:  # a recording failure must never take the call down
            self.failed = self.failed or "internal error"
            log.exception("the recording %s stopped", self.path)

    def _write_all(self) -> None:
        timeline = Timeline()
        try:
            file, written = self._open()
        except OSError as exc:
            self._fail(exc)
            return
        with file:
            ended = False
            while not ended:
                kind, when, pcm = self._queue.get()
                at = round((when - self._started) * RATE)
                if kind == _CALLER:
                    timeline.caller(at, pcm)
                elif kind == _ASSISTANT:
                    timeline.assistant(at, pcm)
                elif kind == _CLEARED:
                    timeline.cleared(at)
                if kind == _END:
                    data, ended = timeline.end(at), True
                elif timeline.final(at) - timeline.base >= WRITE_EVERY:
                    data = timeline.take(timeline.final(at))
                else:
                    continue
                if self.failed is None:
                    try:
                        file.write(data)
                        written += len(data)
                        # The header says how much is there after every write, so a process
                        # killed mid-call leaves a playable file (and the next stream of the
                        # call appends to what it says).
                        file.seek(0)
                        file.write(_header(written))
                        file.seek(0, os.SEEK_END)
                    except OSError as exc:
                        self._fail(exc)
        self.seconds = written / (RATE * CHANNELS * SAMPLE_BYTES)

    def _open(self) -> tuple[BinaryIO, int]:
        """The file, positioned at its end, and the audio bytes already in it (a keypad
        handover continues the call's recording)."""
        private_folder(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        file = os.fdopen(fd, "r+b")
        head = file.read(HEADER_BYTES)
        if _ours(head):
            written = struct.unpack("<I", head[40:44])[0]
            file.seek(HEADER_BYTES + written)
            file.truncate()
            return file, written
        file.seek(0)
        file.truncate()
        file.write(_header(0))
        return file, 0

    def _fail(self, exc: OSError) -> None:
        if self.failed is None:
            self.failed = str(exc)
            log.error("could not record the call's audio to %s: %s", self.path, exc)
