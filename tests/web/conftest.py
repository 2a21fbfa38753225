"""Calls in these tests speak quickly: the synthetic speech runs at 20 characters a second.

Decoding does not depend on the length of the speech (each utterance carries an id), so
this only shortens the real-time audio pacing pipecat applies to what the assistant says.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_speech(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tars.emulators.speech.CHARS_PER_SECOND", 20.0)
