"""Fixtures for the Twilio emulator tests: the emulator, a signature-checking webhook app, a real client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from twilio.rest import Client
from twilio_helpers import WebhookApp

from tars.sim.twilio import TwilioEmulator


@pytest.fixture(autouse=True)
def twilio_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback traffic must never go through a proxy from the environment."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
async def twilio_emu() -> AsyncIterator[TwilioEmulator]:
    async with TwilioEmulator(realtime=False) as emu:
        yield emu


@pytest.fixture
async def twilio_app(twilio_emu: TwilioEmulator) -> AsyncIterator[WebhookApp]:
    async with WebhookApp(twilio_emu.auth_token) as app:
        yield app


@pytest.fixture
def twilio_client(twilio_emu: TwilioEmulator) -> Client:
    return twilio_emu.rest_client()
