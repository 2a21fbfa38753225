"""How the emulated model's speech goes on the wire: parts, transcription fragments, bursts.

The real service is untidy in three ways a client must survive, each a ``LiveOptions``
knob (and ``given.gemini`` in a scenario) so a test can ask for it:

* **Several parts in one message** (``parts_per_message``): ``serverContent.modelTurn``
  is a ``Content`` whose ``parts`` is a list (BidiGenerateContentServerContent,
  https://ai.google.dev/api/live#bidigeneratecontentservercontent), and pipecat's own
  dispatcher says "Gemini 3.x can bundle multiple content fields and turn_complete on the
  same message". A client that reads ``parts[0]`` only (pipecat 1.14) loses the rest.
* **Transcriptions in small fragments, not aligned with the audio**
  (``transcription_chars``): "the output transcription chunks are not aligned with the
  audio chunks and there is no timestamp" (google-gemini/cookbook#822), and they come a
  few characters at a time, split inside words: "Ca", "n I", " pl", "eas", "e h"
  (google-gemini/cookbook#951: "you need to get all the parts that you are receiving and
  stitch them"). Here the fragments run ahead of the audio they belong to (on Vertex
  "output transcription messages arrive *before* the model_turn messages with audio",
  pipecat 1.14 ``_handle_msg_output_transcription``). ``None`` keeps one transcription
  per sentence after its audio.
* **Audio in bursts, sometimes slower than real time** (``burst_messages`` with
  ``pacing``): messages go out ``burst_messages`` at a time, then the sender waits until
  the audio sent so far is due at ``pacing`` (1.0 real time; above 1, slower than real
  time, so a client's playback runs dry between bursts).

The emulator is as untidy as the service by default (``REALISTIC``, what the sources above
describe), so every test meets what a real call meets. ``TIDY`` (one part a message, one
transcription per sentence after its audio, no bursts) is the explicit opt-out
(``delivery: tidy`` in a scenario) for the few tests that need frames in lockstep with the
sentences, such as a benchmark timing byte-exact audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Untidy, as the sources in the module docstring describe (3-character fragments,
#: cookbook#951; a few parts a message; bursts of two messages): the emulator's default.
REALISTIC: dict[str, Any] = {"parts_per_message": 3, "transcription_chars": 3, "burst_messages": 2}
#: Tidy, asked for explicitly: one part a message, one transcription per sentence, no bursts.
TIDY: dict[str, Any] = {"parts_per_message": 1, "transcription_chars": None, "burst_messages": 1}


@dataclass(frozen=True)
class Message:
    """One server message of a spoken sentence: its audio chunks, and transcription fragments
    to send just before it."""

    chunks: tuple[bytes, ...]
    fragments: tuple[str, ...]


def fragments(text: str, size: int | None) -> list[str]:
    """``text`` in pieces of ``size`` characters (split inside words, as the service does)."""
    if not size or size <= 0:
        return [text]
    return [text[i : i + size] for i in range(0, len(text), size)]


def plan(audio: bytes, step: int, spoken: str, parts: int, chars: int | None) -> Iterator[Message]:
    """The messages for one sentence: ``audio`` in chunks of ``step`` bytes, ``parts`` a message,
    with ``spoken``'s fragments spread over them ahead of the audio (only when ``chars`` is set;
    otherwise the caller sends the sentence's transcription after its audio)."""
    chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
    groups = [tuple(chunks[i : i + max(1, parts)]) for i in range(0, len(chunks), max(1, parts))]
    pieces = fragments(spoken, chars) if chars else []
    if not groups:
        return
    # Fragment k goes before message k * len(groups) // len(pieces), less one: ahead of its audio.
    due: dict[int, list[str]] = {}
    for k, piece in enumerate(pieces):
        due.setdefault(max(0, k * len(groups) // len(pieces) - 1), []).append(piece)
    for i, group in enumerate(groups):
        yield Message(group, tuple(due.get(i, ())))


def model_turn(chunks: tuple[bytes, ...], rate: int, encode: Any) -> dict[str, Any]:
    """A ``serverContent.modelTurn`` frame carrying ``chunks`` as inlineData parts."""
    parts = [{"inlineData": {"mimeType": f"audio/pcm;rate={rate}", "data": encode(c)}} for c in chunks]
    return {"serverContent": {"modelTurn": {"parts": parts}}}
