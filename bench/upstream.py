"""Where a server under test finds the emulators: read from the environment it was started with.

TARS gets these through its own project (``telephony.api_base_url``, ``model.base_url``,
``TARS_GEMINI_CA_FILE``); the two reference servers (``bench.bare_pipecat``, ``bench.floor``)
read them from here. Kept free of heavy imports: both servers import it at start-up.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

MODEL = "models/gemini-3.8-live"
GREETING_PROMPT = "Greet the caller."
SYSTEM_INSTRUCTION = "You are a helpful assistant answering the phone. Keep replies short."


@dataclass(frozen=True)
class Upstream:
    public_url: str  # what Twilio calls us at (the Twilio emulator proxies it to us)
    twilio_base_url: str
    account_sid: str
    auth_token: str
    gemini_base_url: str
    gemini_ca_file: str
    gemini_api_key: str

    @classmethod
    def from_env(cls) -> Upstream:
        env = os.environ
        return cls(
            public_url=env["BENCH_PUBLIC_URL"],
            twilio_base_url=env["BENCH_TWILIO_BASE_URL"],
            account_sid=env["TWILIO_ACCOUNT_SID"],
            auth_token=env["TWILIO_AUTH_TOKEN"],
            gemini_base_url=env["BENCH_GEMINI_BASE_URL"],
            gemini_ca_file=env["BENCH_GEMINI_CA_FILE"],
            gemini_api_key=env["GEMINI_API_KEY"],
        )

    def env(self) -> dict[str, str]:
        return {
            "BENCH_PUBLIC_URL": self.public_url,
            "BENCH_TWILIO_BASE_URL": self.twilio_base_url,
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "BENCH_GEMINI_BASE_URL": self.gemini_base_url,
            "BENCH_GEMINI_CA_FILE": self.gemini_ca_file,
            "GEMINI_API_KEY": self.gemini_api_key,
        }

    def gemini_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.gemini_ca_file)

    @property
    def stream_url(self) -> str:
        """The media stream URL for TwiML (Twilio requires wss://)."""
        return "wss://" + self.public_url.split("://", 1)[1].rstrip("/") + "/ws"

    @property
    def live_url(self) -> str:
        host = self.gemini_base_url.split("://", 1)[1].rstrip("/")
        return f"wss://{host}/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


def connect_twiml(stream_url: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{stream_url}"/></Connect></Response>'
