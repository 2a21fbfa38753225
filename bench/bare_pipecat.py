"""Bare Pipecat: the reference TARS is compared with, and nothing more.

Pipecat's own Twilio + Gemini Live example pipeline, without the parts a phone bot for a
browser needs (RTVI) and without a local VAD (Gemini Live detects turns; TARS runs none
either)::

    Twilio websocket → TwilioFrameSerializer → user aggregator → GeminiLiveLLMService
                     → transport output → assistant aggregator

No signatures, no roles, no tools, no database, no transcript: whatever TARS costs beyond
this is the price of its own layers. It runs like ``tars serve`` does, a FastAPI app under
uvicorn with the same websocket implementation and pipecat's logging at WARNING.

    BENCH_PUBLIC_URL=… BENCH_TWILIO_BASE_URL=… BENCH_GEMINI_BASE_URL=… BENCH_GEMINI_CA_FILE=… \\
    TWILIO_ACCOUNT_SID=… TWILIO_AUTH_TOKEN=… GEMINI_API_KEY=… python -m bench.bare_pipecat --port 8765
"""

# No `from __future__ import annotations`: FastAPI resolves the handlers' annotations at run
# time, and the imports they name are local to create_app.
import argparse
import sys
from typing import Any

from bench.upstream import GREETING_PROMPT, MODEL, SYSTEM_INSTRUCTION, Upstream, connect_twiml


def create_app(upstream: Upstream) -> Any:
    from fastapi import FastAPI, WebSocket
    from fastapi.responses import JSONResponse, Response
    from google.genai.types import HttpOptions
    from pipecat.frames.frames import LLMRunFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
    from pipecat.runner.utils import parse_telephony_websocket
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
    from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
    from pipecat.workers.runner import WorkerRunner

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    tls = upstream.gemini_ssl()
    live_calls = 0

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "live_calls": live_calls})

    @app.post("/twilio/voice")
    async def voice() -> Response:
        return Response(connect_twiml(upstream.stream_url), media_type="application/xml")

    @app.post("/twilio/status")
    async def status() -> Response:
        return Response(status_code=204)

    @app.websocket("/ws")
    async def stream(websocket: WebSocket) -> None:
        nonlocal live_calls
        await websocket.accept()
        _kind, call_data = await parse_telephony_websocket(websocket)
        serializer = TwilioFrameSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            account_sid=upstream.account_sid,
            auth_token=upstream.auth_token,
            base_url=upstream.twilio_base_url,
        )
        transport = FastAPIWebsocketTransport(
            websocket,
            FastAPIWebsocketParams(
                audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer
            ),
        )
        llm = GeminiLiveLLMService(
            api_key=upstream.gemini_api_key,
            settings=GeminiLiveLLMService.Settings(model=MODEL, voice="Charon", system_instruction=SYSTEM_INSTRUCTION),
            http_options=HttpOptions(base_url=upstream.gemini_base_url, async_client_args={"ssl": tls}),
        )
        context = LLMContext(messages=[{"role": "user", "content": GREETING_PROMPT}])
        pair = LLMContextAggregatorPair(context)
        pipeline = Pipeline([transport.input(), pair.user(), llm, transport.output(), pair.assistant()])
        params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=24000)
        worker = PipelineWorker(pipeline, params=params)

        @transport.event_handler("on_client_disconnected")
        async def _gone(_transport: Any, _client: Any) -> None:
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
        live_calls += 1
        try:
            await runner.add_workers(worker)
            await worker.queue_frame(LLMRunFrame())
            await runner.run()
        finally:
            live_calls -= 1

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Bare Pipecat Twilio ⇄ Gemini Live server (benchmark reference).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    import uvicorn
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    app = create_app(Upstream.from_env())
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="off", ws=_websockets_impl())


def _websockets_impl() -> str:
    """The websocket implementation `tars serve` uses (tars.server.run), for a like-for-like run."""
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
    except ImportError:
        return "websockets"
    return "websockets-sansio"


if __name__ == "__main__":
    main()
