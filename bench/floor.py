"""The floor: the least a Twilio ⇄ Gemini Live bridge has to do, written by hand.

Per call, one asyncio task in each direction and nothing else:

* Twilio → Gemini: base64 μ-law 8 kHz → PCM16 (lookup table) → 16 kHz (linear
  interpolation, no look-ahead) → ``realtime_input.audio`` JSON on the Live websocket.
* Gemini → Twilio: ``serverContent.modelTurn`` PCM16 24 kHz → 8 kHz (mean of each 3
  samples) → μ-law (lookup table) → a ``media`` frame at once (Twilio buffers; no pacing);
  ``interrupted`` → ``clear``.

The Live protocol is spoken directly with ``websockets`` over TLS (setup, one seed turn
so the model greets, then audio); the Twilio side is an aiohttp server answering the
voice webhook with ``<Connect><Stream>`` and the stream itself. Latency and CPU beyond
this are the price of a framework (bare Pipecat) and of TARS's own layers.

    BENCH_PUBLIC_URL=… (see bench.upstream) python -m bench.floor --port 8766
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
from typing import Any

import numpy as np
import websockets
from aiohttp import WSMsgType, web

from bench.upstream import GREETING_PROMPT, MODEL, SYSTEM_INSTRUCTION, Upstream, connect_twiml


def _ulaw_tables() -> tuple[np.ndarray, np.ndarray]:
    """G.711 μ-law: decode[256] → int16, encode[65536] indexed by int16 + 32768 → uint8."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
    decode = np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)
    v = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), 8159) + (0x84 >> 2)
    segment = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), v)
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((v >> (segment + 1)) & 0x0F))
    return decode, (code ^ mask).astype(np.uint8)


ULAW_DECODE, ULAW_ENCODE = _ulaw_tables()


class Upsampler:
    """8 → 16 kHz by linear interpolation: exactly two samples out per sample in."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        before = np.concatenate(([self.last], x[:-1]))
        self.last = float(x[-1]) if len(x) else self.last
        out = np.empty(2 * len(x), dtype=np.float32)
        out[0::2] = (before + x) / 2
        out[1::2] = x
        return out.astype(np.int16)


class Downsampler:
    """24 → 8 kHz: the mean of each three samples (a boxcar low-pass, then decimation)."""

    def __init__(self) -> None:
        self.rest = np.zeros(0, dtype=np.int32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.concatenate((self.rest, x.astype(np.int32)))
        whole = len(x) // 3 * 3
        self.rest = x[whole:]
        return (x[:whole].reshape(-1, 3).sum(axis=1) // 3).astype(np.int16)


async def bridge(twilio: web.WebSocketResponse, upstream: Upstream) -> None:
    """One call: Twilio's media stream on one side, a Gemini Live session on the other."""
    stream_sid = ""
    async for message in twilio:  # "connected", then "start"
        frame = json.loads(message.data)
        if frame.get("event") == "start":
            stream_sid = frame["start"]["streamSid"]
            break
    if not stream_sid:
        return
    async with websockets.connect(
        upstream.live_url,
        ssl=upstream.gemini_ssl(),
        additional_headers={"x-goog-api-key": upstream.gemini_api_key},
        max_size=None,
        proxy=None,
    ) as gemini:
        await gemini.send(
            json.dumps(
                {
                    "setup": {
                        "model": MODEL,
                        "generationConfig": {"responseModalities": ["AUDIO"]},
                        "systemInstruction": {"parts": [{"text": SYSTEM_INSTRUCTION}]},
                    }
                }
            )
        )
        json.loads(await gemini.recv())  # setupComplete
        await gemini.send(
            json.dumps(
                {
                    "clientContent": {
                        "turns": [{"role": "user", "parts": [{"text": GREETING_PROMPT}]}],
                        "turnComplete": True,
                    }
                }
            )
        )
        downlink = asyncio.create_task(_gemini_to_twilio(gemini, twilio, stream_sid))
        try:
            await _twilio_to_gemini(twilio, gemini)
        finally:
            downlink.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await downlink


async def _twilio_to_gemini(twilio: web.WebSocketResponse, gemini: Any) -> None:
    upsample = Upsampler()
    async for message in twilio:
        if message.type != WSMsgType.TEXT:
            break
        frame = json.loads(message.data)
        event = frame.get("event")
        if event == "stop":
            break
        if event != "media":
            continue
        pcm8 = ULAW_DECODE[np.frombuffer(base64.b64decode(frame["media"]["payload"]), dtype=np.uint8)]
        pcm16 = upsample(pcm8).tobytes()
        await gemini.send(
            json.dumps(
                {
                    "realtimeInput": {
                        "audio": {
                            "data": base64.b64encode(pcm16).decode("ascii"),
                            "mimeType": "audio/pcm;rate=16000",
                        }
                    }
                }
            )
        )


async def _gemini_to_twilio(gemini: Any, twilio: web.WebSocketResponse, stream_sid: str) -> None:
    downsample = Downsampler()
    async for message in gemini:
        content = json.loads(message).get("serverContent")
        if not content:
            continue
        if content.get("interrupted"):
            await twilio.send_str(json.dumps({"event": "clear", "streamSid": stream_sid}))
        for part in (content.get("modelTurn") or {}).get("parts") or []:
            blob = part.get("inlineData")
            if not blob:
                continue
            pcm24 = np.frombuffer(base64.b64decode(blob["data"]), dtype=np.int16)
            ulaw = ULAW_ENCODE[downsample(pcm24).astype(np.int32) + 32768].tobytes()
            await twilio.send_str(
                json.dumps(
                    {
                        "event": "media",
                        "streamSid": stream_sid,
                        "media": {"payload": base64.b64encode(ulaw).decode("ascii")},
                    }
                )
            )


def create_app(upstream: Upstream) -> web.Application:
    live = 0

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "live_calls": live})

    async def voice(_request: web.Request) -> web.Response:
        return web.Response(text=connect_twiml(upstream.stream_url), content_type="application/xml")

    async def status(_request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def stream(request: web.Request) -> web.WebSocketResponse:
        nonlocal live
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        live += 1
        try:
            await bridge(ws, upstream)
        except (websockets.ConnectionClosed, ConnectionError):
            pass
        finally:
            live -= 1
            await ws.close()
        return ws

    app = web.Application()
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.post("/twilio/voice", voice),
            web.post("/twilio/status", status),
            web.get("/ws", stream),
        ]
    )
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Hand-written Twilio ⇄ Gemini Live bridge (benchmark floor).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(create_app(Upstream.from_env()), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
