"""A second reference: bare Pipecat with the two audio choices TARS makes, nothing else.

``tars serve`` differs from Pipecat's Twilio example in two settings that are not TARS's
layers but change the latency and cost of every call (``tars.calls.audio`` and
``CallSession.build``):

1. **Resampling.** Pipecat's ``TwilioFrameSerializer`` resamples with soxr's stream
   resampler at "VHQ", which holds audio back: ~95 ms caller → Gemini and ~137 ms Gemini →
   caller. TARS uses a short polyphase FIR (~3 ms each way) and hands the caller's audio
   on in 40 ms frames.
2. **Turn detection.** ``LLMContextAggregatorPair``'s default user-turn strategies load a
   local turn-detection model for every call (~150-250 ms of the event loop, ~10 MB) that
   Gemini Live, deciding turns itself, never uses. TARS passes
   ``ExternalUserTurnStrategies``.

Applied to ``bench.bare_pipecat`` from outside, so TARS / this reference is the cost of
TARS's own layers alone (persona, tools and their gate, recording, scheduler, security),
while TARS / bare Pipecat is what a user of either gets.
"""

from __future__ import annotations


def apply() -> None:
    import pipecat.turns.user_turn_strategies as strategies
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.turns.user_start import ExternalUserTurnStartStrategy
    from pipecat.turns.user_stop import ExternalUserTurnStopStrategy

    from tars.calls import audio

    original = TwilioFrameSerializer.__init__

    def __init__(self: TwilioFrameSerializer, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        self._input_resampler = audio.GatheredResampler()
        self._output_resampler = audio.LowLatencyResampler()

    TwilioFrameSerializer.__init__ = __init__  # type: ignore[method-assign]
    strategies.default_user_turn_start_strategies = lambda: [ExternalUserTurnStartStrategy()]  # type: ignore[assignment]
    strategies.default_user_turn_stop_strategies = lambda: [ExternalUserTurnStopStrategy()]  # type: ignore[assignment]
