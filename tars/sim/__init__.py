"""Loopback emulators that speak the real Twilio and Gemini Live wire protocols."""
