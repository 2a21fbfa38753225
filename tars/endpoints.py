"""Where the outside services are: the real Twilio and Gemini, or loopback emulators.

Production uses the vendors' defaults. ``tars simulate``/``--simulate`` and the tests
point the same, unmodified SDKs at the emulators by handing in an ``Endpoints``.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any

from tars.project import Project


@dataclass(frozen=True)
class Endpoints:
    """Credentials and base URLs for Twilio and Gemini, resolved once at start-up."""

    twilio_account_sid: str
    twilio_auth_token: str = field(repr=False)
    twilio_api_base_url: str | None = None  # None: api.twilio.com
    gemini_api_key: str = field(default="", repr=False)
    gemini_base_url: str | None = None  # None: generativelanguage.googleapis.com
    gemini_ssl: ssl.SSLContext | None = field(default=None, repr=False)

    @classmethod
    def from_project(cls, project: Project) -> Endpoints:
        telephony = project.section("telephony")
        model = project.section("model")
        ca_file = os.environ.get("TARS_GEMINI_CA_FILE")
        return cls(
            twilio_account_sid=telephony.get("account_sid") or "",
            twilio_auth_token=telephony.get("auth_token") or "",
            twilio_api_base_url=telephony.get("api_base_url"),
            gemini_api_key=model.get("api_key") or "",
            gemini_base_url=model.get("base_url"),
            gemini_ssl=ssl.create_default_context(cafile=ca_file) if ca_file else None,
        )

    def missing(self) -> list[str]:
        """What a real server cannot run without, as the variables to set."""
        gaps = []
        if not self.twilio_account_sid:
            gaps.append("telephony.account_sid (TWILIO_ACCOUNT_SID)")
        if not self.twilio_auth_token:
            gaps.append("telephony.auth_token (TWILIO_AUTH_TOKEN)")
        if not self.gemini_api_key:
            gaps.append("model.api_key (GEMINI_API_KEY)")
        return gaps

    def http_options(self) -> Any:
        """google-genai HttpOptions for these endpoints (None: the SDK's defaults)."""
        if not self.gemini_base_url and not self.gemini_ssl:
            return None
        from google.genai.types import HttpOptions

        kwargs: dict[str, Any] = {}
        if self.gemini_base_url:
            kwargs["base_url"] = self.gemini_base_url
        if self.gemini_ssl is not None:
            kwargs["async_client_args"] = {"ssl": self.gemini_ssl}
            kwargs["client_args"] = {"verify": self.gemini_ssl}
        return HttpOptions(**kwargs)

    def twilio_client(self) -> Any:
        """A twilio-python REST client for these endpoints."""
        from twilio.rest import Client

        client = Client(self.twilio_account_sid, self.twilio_auth_token)
        if self.twilio_api_base_url:
            client.api.base_url = self.twilio_api_base_url.rstrip("/")
        return client
