"""The Twilio emulator: REST API, webhooks, TwiML and Media Streams, as the real service speaks them."""
