"""The synthetic speech codec survives the real telephony audio paths."""

from __future__ import annotations

import asyncio
import warnings

import numpy as np
import pytest

from tars.emulators import speech

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # only as the reference for the numpy G.711 codec

from pipecat.audio.utils import create_stream_resampler, pcm_to_ulaw, ulaw_to_pcm


def _detect(pcm: bytes, rate: int, chunk: int) -> list[speech.Utterance]:
    det = speech.SpeechDetector(rate)
    out: list[speech.Utterance] = []
    for i in range(0, len(pcm), chunk):
        out += det.feed(pcm[i : i + chunk])
    return out + det.flush()


def test_encode_is_deterministic_and_length_follows_text() -> None:
    short = speech.encode("hi", 16000)
    long = speech.encode("I would like to book a table for four at eight.", 16000)
    assert speech.encode("hi", 16000) == short
    assert len(long) > len(short)
    assert speech.duration_ms(short, 16000) == 700 + speech.MIN_BODY_MS
    assert len(speech.silence(20, 8000)) == 320
    assert set(speech.silence(20, 8000)) == {0}


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_detector_decodes_text_and_end_of_speech(rate: int) -> None:
    audio = speech.silence(200, rate) + speech.encode("book a table", rate)
    det = speech.SpeechDetector(rate, end_silence_ms=500)
    assert det.feed(audio) == []
    assert det.speaking
    assert det.feed(speech.silence(300, rate)) == []  # not yet 500 ms of silence
    [utt] = det.feed(speech.silence(300, rate))
    assert utt.text == "book a table"
    assert utt.uid is not None and len(utt.uid) == 6
    assert abs(utt.duration_ms - 1700) <= 20
    assert not det.speaking


def test_two_utterances_and_flush() -> None:
    rate = 16000
    audio = speech.encode("first", rate) + speech.silence(600, rate) + speech.encode("second", rate)
    det = speech.SpeechDetector(rate)
    assert [u.text for u in det.feed(audio)] == ["first"]
    assert [u.text for u in det.flush()] == ["second"]
    assert det.flush() == []


def test_unknown_audio_is_described_by_duration() -> None:
    rate = 8000
    t = np.arange(rate) / rate
    hum = (6000 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()
    [utt] = _detect(hum + speech.silence(600, rate), rate, 160)
    assert utt.uid is None
    assert utt.text == "[speech 1.0s]"


def test_unregistered_id_gives_duration_text() -> None:
    rate = 16000
    audio = speech.encode("secret words", rate)
    uid = speech._by_text["secret words"]
    with speech._lock:  # simulate a decoder in another process
        del speech._registry[uid]
    try:
        [utt] = _detect(audio + speech.silence(600, rate), rate, 640)
    finally:
        with speech._lock:
            speech._registry[uid] = "secret words"
    assert utt.uid == uid
    assert utt.text.startswith("[speech ") and utt.text.endswith("s]")


def test_numpy_ulaw_matches_audioop() -> None:
    ramp = np.arange(-32768, 32768, dtype=np.int32).astype("<i2").tobytes()
    assert speech.pcm16_to_ulaw(ramp) == audioop.lin2ulaw(ramp, 2)
    every = bytes(range(256))
    assert speech.ulaw_to_pcm16(every) == audioop.ulaw2lin(every, 2)


def test_roundtrip_16k_through_ulaw_8k_and_back_with_pipecat() -> None:
    """Caller path: 16 kHz -> Twilio μ-law 8 kHz -> pipecat resampler -> 16 kHz."""

    async def run() -> list[speech.Utterance]:
        down, up = create_stream_resampler(), create_stream_resampler()
        src = speech.silence(100, 16000) + speech.encode("book a table", 16000)
        src += speech.silence(700, 16000)
        det = speech.SpeechDetector(16000)
        out: list[speech.Utterance] = []
        for i in range(0, len(src), 640):  # 20 ms chunks like the pipeline
            ulaw = await pcm_to_ulaw(src[i : i + 640], 16000, 8000, down)
            out += det.feed(await ulaw_to_pcm(ulaw, 8000, 16000, up))
        return out + det.flush()

    [utt] = asyncio.run(run())
    assert utt.text == "book a table"


def test_roundtrip_24k_model_audio_to_ulaw_8k_with_pipecat() -> None:
    """Bot path: Gemini 24 kHz -> pipecat -> μ-law 8 kHz -> decoded at 8 kHz."""

    async def run() -> list[speech.Utterance]:
        down = create_stream_resampler()
        src = speech.encode("Hello, this is the emulator.", 24000) + speech.silence(700, 24000)
        det = speech.SpeechDetector(8000)
        out: list[speech.Utterance] = []
        for i in range(0, len(src), 4800):  # 100 ms chunks like the emulator sends
            ulaw = await pcm_to_ulaw(src[i : i + 4800], 24000, 8000, down)
            out += det.feed(speech.ulaw_to_pcm16(ulaw))
        return out + det.flush()

    [utt] = asyncio.run(run())
    assert utt.text == "Hello, this is the emulator."


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_tolerates_offsets_odd_chunks_and_noise(rate: int) -> None:
    rng = np.random.default_rng(7)
    for shift in (0, 3, 41, 77):
        text = f"offset {shift}"
        pcm = bytes(2 * shift) + speech.encode(text, rate) + speech.silence(600, rate)
        noisy = np.frombuffer(pcm, "<i2") + rng.normal(0, 30, len(pcm) // 2)
        pcm = np.clip(noisy, -32768, 32767).astype("<i2").tobytes()
        for chunk in (999, 2 * rate // 50):
            assert [u.text for u in _detect(pcm, rate, chunk)] == [text]
