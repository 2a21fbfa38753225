"""The Gemini emulator: Live websocket, REST and embeddings, as the real service speaks them."""
