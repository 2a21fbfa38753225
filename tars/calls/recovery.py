"""What a model session that was reconnected after a stall is told (``tars.calls.watchdog``).

A session that stalls is reconnected once (``GatedGeminiLive.reconnect_stalled``): resumed
with its latest resumable handle, the caller's audio since that handle sent again (as a
``goAway`` handover does, ``tars.calls.handover``), or, when it cannot be resumed, a new
session seeded with the call so far. Either way the caller's unanswered words reach it:
in the audio sent again when that audio holds them, else in words (``prompt``, ``seed``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Lines of the call so far a new session is told (the latest ones).
SO_FAR_LINES = 40


def so_far(lines: Iterable[tuple[str, str]]) -> str:
    """The call so far, for a model that takes over a call in the middle (after a transfer
    nobody took, or a stalled session replaced by a new one)."""
    said = [f"{speaker}: {text}" for speaker, text in lines]
    return "The call so far (you are continuing it; do not greet again):\n" + "\n".join(said[-SO_FAR_LINES:])


def prompt(words: str) -> str:
    """For a resumed session whose resent audio does not hold the caller's words."""
    return (
        f'[System] The connection to you was renewed. The caller said "{words}" and is still waiting '
        "for your answer. Answer them now."
    )


def seed(lines: Iterable[tuple[str, str]], words: str) -> str:
    """The first message of a new session that replaces a stalled one."""
    return (
        f"[The call goes on with you after a technical problem. {so_far(lines)}\n"
        f'The caller said "{words}" and is still waiting for your answer. Answer them now, '
        "without greeting them again.]"
    )


@dataclass
class Recovery:
    """One reconnect of a stalled session, from the watchdog's call until the new session is ready."""

    words: str  # the caller's unanswered words
    resumed: bool  # resumed with a handle (False: a new session, told the call so far)
    carried: bool  # the audio sent again holds the caller's words
    seed: str | None = None  # a new session's first message
