"""An experiment, not a reference: what two Pipecat defaults cost TARS, measured by undoing them.

Applied from outside, at Pipecat's level, to an unmodified server (``tars serve`` or
``bench.bare_pipecat``), so the gain can be measured before TARS changes a line:

1. **Resampling.** ``TwilioFrameSerializer`` resamples with soxr at "VHQ", whose stream
   mode hands audio on in blocks: ~95 ms caller → Gemini (so the end of the caller's speech
   reaches Gemini up to ~100 ms late) and ~137 ms Gemini → caller (so a reply's first
   frame waits for that much audio). Here: caller → Gemini at "QQ" (upsampling needs no
   anti-alias filter) gathered into 40 ms messages (per-20 ms messages would cost about twice the
   CPU: every message crosses the whole pipeline and the Live websocket), and Gemini →
   caller at "LQ" (a real low-pass, ~40 ms of delay, then every chunk at once).
2. **Turn detection.** ``LLMContextAggregatorPair``'s default user-turn strategies load the
   local smart-turn ONNX model for every call: ~150-250 ms of the event loop while a call
   starts (every live call's audio waits) and ~10 MB per call, for a model Gemini Live,
   deciding turns itself, never needs. Here: ``ExternalUserTurnStrategies``.

In TARS the same is a few lines in ``CallSession.build``: the serializer's two resamplers,
and ``LLMContextAggregatorPair(context, user_params=LLMUserAggregatorParams(
user_turn_strategies=ExternalUserTurnStrategies()))``.

    python -m bench.tuning --project DIR serve …      # tars, tuned (see bench.servers)
"""

from __future__ import annotations

from typing import Any

INPUT_BATCH_SECONDS = 0.04


def apply() -> None:
    import pipecat.turns.user_turn_strategies as strategies
    from pipecat.audio.resamplers.soxr_stream_resampler import SOXRStreamAudioResampler
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.turns.user_start import ExternalUserTurnStartStrategy
    from pipecat.turns.user_stop import ExternalUserTurnStopStrategy

    class Gathered(SOXRStreamAudioResampler):
        """Resample at once, hand on whole ``seconds`` at a time (b"" meanwhile: no frame)."""

        def __init__(self, seconds: float, **kwargs: Any):
            super().__init__(**kwargs)
            self.seconds = seconds
            self.held = b""

        async def resample(self, audio: bytes, in_rate: int, out_rate: int) -> bytes:
            self.held += await super().resample(audio, in_rate, out_rate)
            if len(self.held) < int(out_rate * 2 * self.seconds):
                return b""
            out, self.held = self.held, b""
            return out

    original = TwilioFrameSerializer.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._input_resampler = Gathered(INPUT_BATCH_SECONDS, quality="QQ")
        self._output_resampler = SOXRStreamAudioResampler(quality="LQ")

    TwilioFrameSerializer.__init__ = __init__  # type: ignore[method-assign]
    strategies.default_user_turn_start_strategies = lambda: [ExternalUserTurnStartStrategy()]  # type: ignore[assignment]
    strategies.default_user_turn_stop_strategies = lambda: [ExternalUserTurnStopStrategy()]  # type: ignore[assignment]


def tars_main() -> None:
    """``tars`` with the tuning applied (argv as for ``tars``)."""
    apply()
    from tars.cli.app import main

    main()


if __name__ == "__main__":
    tars_main()
