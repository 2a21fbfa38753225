"""Answers that fit a text message: shortened to ``texts.sms_length`` characters at a word,
then split into parts of one SMS segment each, numbered when there are several.

A GSM-7 message is 160 characters in one segment and 153 per segment once concatenated
(https://www.twilio.com/docs/glossary/what-sms-character-limit); TARS sends each part as a
message of its own, so every part reads on its own and arrives in order of its number.
"""

from __future__ import annotations

SEGMENT = 160
#: Room kept in each part of several for its number, " (2/3)".
NUMBER_ROOM = 7


def shorten(text: str, limit: int) -> str:
    """``text`` cut at the last whole word before ``limit`` characters, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(",;:") + "…"


def parts(text: str, limit: int = 320) -> list[str]:
    """The messages to send for ``text``: at most ``limit`` characters in all."""
    text = shorten(text, limit)
    if len(text) <= SEGMENT:
        return [text]
    room = SEGMENT - NUMBER_ROOM
    chunks: list[str] = []
    current = ""
    for word in text.split(" "):
        while len(word) > room:  # a word longer than a part (a URL): cut it
            if current:
                chunks.append(current)
                current = ""
            chunks.append(word[:room])
            word = word[room:]
        if current and len(current) + 1 + len(word) > room:
            chunks.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        chunks.append(current)
    return [f"{chunk} ({n}/{len(chunks)})" for n, chunk in enumerate(chunks, 1)]
