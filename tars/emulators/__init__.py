"""Loopback emulators that speak the real Twilio and Gemini wire protocols; they import nothing of TARS."""
