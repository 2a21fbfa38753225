"""The media stream's websocket, watched for how it closed.

Pipecat's transport reads the socket until the ``websocket.disconnect`` message and drops
its close code, so a stream the web server closed because Twilio's side broke the protocol
looked like a hang-up, and the call was recorded ``completed``. ``WatchedSocket`` keeps the
code and reason of that message; ``failure`` names the closes that mean the call failed.

The web server closes a stream itself with these codes (RFC 6455 §7.4.1,
https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1): 1009 for a message over its size
limit (``tars.server.limits.STREAM_MESSAGE_LIMIT``), 1007 for text that is not UTF-8,
1002 for a broken frame.
"""

from __future__ import annotations

from typing import Any

#: Close codes that mean the stream broke (sent by the web server on a bad message).
FAILED_CLOSES = {
    1002: "a broken websocket frame",
    1007: "a message that is not valid UTF-8",
    1009: "a message too large for the stream",
}


class WatchedSocket:
    """A Starlette ``WebSocket`` that remembers the close code and reason it received."""

    def __init__(self, websocket: Any) -> None:
        self._websocket = websocket
        self.close_code: int | None = None
        self.close_reason: str = ""

    async def receive(self) -> Any:
        message = await self._websocket.receive()
        if message.get("type") == "websocket.disconnect" and self.close_code is None:
            self.close_code = message.get("code")
            self.close_reason = str(message.get("reason") or "")
        return message

    def __getattr__(self, name: str) -> Any:  # send_text, send_bytes, close, the states
        return getattr(self._websocket, name)

    def failure(self) -> str | None:
        """Why the call failed, if the stream was closed for a bad message; else None."""
        what = FAILED_CLOSES.get(self.close_code or 0)
        if what is None:
            return None
        detail = f": {self.close_reason}" if self.close_reason else ""
        return f"the media stream was closed for {what} (close {self.close_code}{detail})"
