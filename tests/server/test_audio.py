"""The call's resamplers: little delay, the telephone band kept, nothing folded into it."""

from __future__ import annotations

import numpy as np
import pytest

from tars.calls.audio import GatheredResampler, LowLatencyResampler, PhoneLineSerializer


def tone(freq: float, rate: int, seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


async def stream(resampler, samples: np.ndarray, in_rate: int, out_rate: int, chunk: int) -> np.ndarray:
    """Resample in chunks of ``chunk`` input samples, as audio arrives on a call."""
    out = bytearray()
    for i in range(0, len(samples), chunk):
        out += await resampler.resample(samples[i : i + chunk].tobytes(), in_rate, out_rate)
    return np.frombuffer(bytes(out), dtype=np.int16).astype(np.float64)


def level(signal: np.ndarray, freq: float, rate: int) -> float:
    """Amplitude of ``freq`` in ``signal`` (a single-bin DFT over whole cycles, edges dropped)."""
    body = signal[len(signal) // 10 : -len(signal) // 10]
    t = np.arange(len(body)) / rate
    return 2 * abs(np.dot(body, np.exp(-2j * np.pi * freq * t))) / len(body)


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "chunk"),
    [(8000, 16000, 160), (24000, 8000, 960), (24000, 8000, 77), (16000, 24000, 320), (8000, 24000, 160)],
)
async def test_the_telephone_band_passes_at_full_level(in_rate: int, out_rate: int, chunk: int) -> None:
    for freq in (300.0, 1000.0, 3000.0):
        out = await stream(LowLatencyResampler(), tone(freq, in_rate, 1.0), in_rate, out_rate, chunk)
        assert len(out) == out_rate  # exactly in * up / down, nothing held back
        assert level(out, freq, out_rate) == pytest.approx(8000, rel=0.03), freq


async def test_what_would_alias_into_the_band_is_removed() -> None:
    # 24 kHz → 8 kHz: a 5 kHz tone would fold to 3 kHz, a 7 kHz one to 1 kHz
    for freq, folded in ((5000.0, 3000.0), (7000.0, 1000.0)):
        out = await stream(LowLatencyResampler(), tone(freq, 24000, 1.0), 24000, 8000, 480)
        assert level(out, folded, 8000) < 8000 * 10 ** (-55 / 20), freq


async def test_upsampling_leaves_no_image_above_the_band() -> None:
    # 8 kHz → 16 kHz: a 1 kHz tone's image would sit at 7 kHz
    out = await stream(LowLatencyResampler(), tone(1000.0, 8000, 1.0), 8000, 16000, 160)
    assert level(out, 7000.0, 16000) < 8000 * 10 ** (-55 / 20)


async def test_delay_is_a_few_milliseconds() -> None:
    """A click goes in; its peak comes out within 4 ms (soxr's VHQ stream holds ~95-137 ms)."""
    for in_rate, out_rate in ((8000, 16000), (24000, 8000)):
        click = np.zeros(in_rate // 10, dtype=np.int16)
        click[0] = 20000
        out = await stream(LowLatencyResampler(), click, in_rate, out_rate, in_rate // 50)
        assert np.argmax(np.abs(out)) / out_rate < 0.004


async def test_chunking_does_not_change_the_result() -> None:
    audio = tone(440.0, 24000, 0.2) + tone(2900.0, 24000, 0.2, 3000)
    whole = await stream(LowLatencyResampler(), audio, 24000, 8000, len(audio))
    for chunk in (1, 7, 480, 1001):
        assert np.array_equal(await stream(LowLatencyResampler(), audio, 24000, 8000, chunk), whole), chunk


async def test_flush_returns_the_tail_and_starts_clean() -> None:
    resampler = LowLatencyResampler()
    body = await stream(resampler, tone(1000.0, 24000, 0.1), 24000, 8000, 480)
    tail = np.frombuffer(await resampler.flush(), dtype=np.int16)
    assert 0 < len(tail) < 100 and len(body) == 800
    fresh = await stream(resampler, tone(1000.0, 24000, 0.1), 24000, 8000, 480)
    assert np.array_equal(fresh, body)


async def test_one_resampler_serves_one_pair_of_rates() -> None:
    resampler = LowLatencyResampler()
    await resampler.resample(b"\0\0" * 160, 8000, 16000)
    with pytest.raises(ValueError, match="8000→16000"):
        await resampler.resample(b"\0\0" * 160, 24000, 8000)


async def test_unusual_rates_fall_back_to_soxr() -> None:
    out = await stream(LowLatencyResampler(), tone(1000.0, 44100, 1.0), 44100, 8000, 441)
    assert level(out[: len(out) // 2 * 2], 1000.0, 8000) == pytest.approx(8000, rel=0.05)


async def test_input_is_handed_on_in_40_ms_frames() -> None:
    resampler = GatheredResampler()
    sizes = [len(await resampler.resample(b"\1\0" * 160, 8000, 16000)) for _ in range(6)]
    assert sizes == [0, 1280, 0, 1280, 0, 1280]  # two 20 ms Twilio frames → one 40 ms frame at 16 kHz


def test_the_serializer_uses_them() -> None:
    serializer = PhoneLineSerializer(stream_sid="MZ1", params=PhoneLineSerializer.InputParams(auto_hang_up=False))
    assert isinstance(serializer._input_resampler, GatheredResampler)
    assert type(serializer._output_resampler) is LowLatencyResampler
