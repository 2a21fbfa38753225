"""Gemini REST embeddings for the emulator: ``models/{model}:embedContent`` and
``models/{model}:batchEmbedContents``, deterministic.

The wire, as documented at https://ai.google.dev/api/embeddings (EmbedContentRequest,
BatchEmbedContentsRequest, ContentEmbedding):

* ``POST /v1beta/models/{model}:embedContent`` with ``{"content": {"parts": [{"text": …}]},
  "taskType"?, "title"?, "outputDimensionality"?}`` answers ``{"embedding": {"values": […]}}``.
* ``POST /v1beta/models/{model}:batchEmbedContents`` with ``{"requests": [EmbedContentRequest…]}``
  answers ``{"embeddings": [{"values": […]}, …]}`` in the order asked. Each request must name
  its ``model`` ("Required … The model in each of these requests must match the model
  specified BatchEmbedContentsRequest.model"), and a batch holds at most 100 requests (the
  service answers 400 ``* BatchEmbedContentsRequest.requests: at most 100 requests can be
  in one batch``: weaviate/weaviate#11277, vercel/ai#16575). google-genai 2.x sends every
  ``client.models.embed_content`` to ``batchEmbedContents`` in API-key mode
  (google/genai/models.py, ``_EmbedContentParametersPrivate_to_mldev``).
* ``outputDimensionality`` reduces the size ("excessive values in the output embedding are
  truncated from the end"); gemini-embedding-001 gives 3072 values by default, and accepts
  128 to 3072 (https://ai.google.dev/gemini-api/docs/embeddings#control-embedding-size).
* Auth is ``x-goog-api-key``; a wrong key is 400 INVALID_ARGUMENT, as for generateContent.

What the values are: a real embedding model places a paraphrase near its original. The
emulator does the same, crudely and deterministically: the text's words, lower-cased, with
common words dropped, each mapped through a small synonym table (``PHRASES`` and
``SYNONYMS``: "tooth doctor", "teeth" and "dental" land on "dentist"; "booked", "booking"
and "appointment" on one word), cut to a rough stem ("leaking" → "leak"), are hashed into
the vector's buckets (blake2b, 8 buckets a word, ±1 by a hash bit: a hashed bag of words),
and the vector is scaled to length 1. Two texts sharing stems (after synonyms) have a high
cosine; unrelated texts about 0. At a reduced size the words are hashed into that many
buckets (the real model's smaller vectors are prefixes of its full one; nothing in TARS
compares vectors of two sizes).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from aiohttp import web

from tars.emulators.gemini.rest import BAD_KEY_MESSAGE
from tars.emulators.gemini.wire import error_json, normalise

FULL_DIMENSIONS = 3072
MIN_DIMENSIONS = 128
MAX_BATCH = 100

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_COMMON = (
    "a an the and or but of to in on at for with from by is are was were be been being it its this that "
    "these those i you he she we they me him her us them my your his our their what which who whom when "
    "where why how do does did done have has had can could will would shall should may might must not no "
    "so if then than there here about as up down out over again very just also too into last said say says "
    "tell told"
)
STOPWORDS = frozenset(_COMMON.split())
#: A paraphrase's words land where the original's did.
SYNONYMS: dict[str, str] = {
    **dict.fromkeys(["dental", "dentists", "dentistry", "orthodontist", "hygienist"], "dentist"),
    **dict.fromkeys(["teeth", "tooth", "filling", "fillings", "cavity", "molar"], "dentist"),
    **dict.fromkeys(["appointment", "appointments", "booking", "bookings", "reservation", "slot", "visit"], "appoint"),
    **dict.fromkeys(["book", "booked", "reserve", "reserved", "schedule", "scheduled"], "appoint"),
    **dict.fromkeys(["checkup", "check", "examination", "exam", "cleaning"], "appoint"),
    **dict.fromkeys(["doctor", "gp", "physician", "surgery", "clinic"], "doctor"),
    **dict.fromkeys(["plumber", "plumbing", "leak", "leaking", "pipe", "pipes", "boiler"], "plumb"),
    **dict.fromkeys(["dinner", "supper", "meal", "lunch", "restaurant"], "meal"),
    **dict.fromkeys(["car", "vehicle", "garage", "mechanic", "mot"], "car"),
    **dict.fromkeys(["price", "cost", "costs", "fee", "fees", "quote", "charge"], "price"),
    **dict.fromkeys(["cancel", "cancelled", "canceled", "cancellation"], "cancel"),
    **dict.fromkeys(["closed", "shut", "holiday", "holidays"], "closed"),
    **dict.fromkeys(["birthday", "birthdays", "anniversary"], "birthday"),
    **dict.fromkeys(["hairdresser", "barber", "haircut", "salon"], "hair"),
    **dict.fromkeys(["vet", "veterinarian", "veterinary"], "vet"),
    **dict.fromkeys(["wait", "postpone", "delay", "later"], "wait"),
    **dict.fromkeys(["spring", "april", "march", "may"], "spring"),
}
#: Phrases read as one word before the words are split.
PHRASES: dict[str, str] = {
    "tooth doctor": "dentist",
    "teeth doctor": "dentist",
    "dental surgery": "dentist",
    "check up": "checkup",
    "check-up": "checkup",
    "call back": "callback",
    "ring back": "callback",
}
#: Each word lands in this many buckets (so one chance collision moves a cosine little).
BUCKETS_PER_WORD = 8
_SUFFIXES = ("ings", "ing", "edly", "ed", "es", "s", "ly")


def stems(text: str) -> list[str]:
    """The words of ``text`` the emulator embeds: lower-cased, common words dropped, synonyms
    mapped, cut to a rough stem."""
    out = []
    text = text.casefold()
    for phrase, word in PHRASES.items():
        text = text.replace(phrase, word)
    for raw in _WORD.findall(text):
        word = raw.removesuffix("'s")
        if word in STOPWORDS or len(word) < 2:
            continue
        word = SYNONYMS.get(word, word)
        for suffix in _SUFFIXES:
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        out.append(SYNONYMS.get(word, word))
    return out


def embed(text: str, dimensions: int = FULL_DIMENSIONS) -> list[float]:
    """The emulator's embedding of ``text``: a hashed bag of stems, length 1."""
    vector = [0.0] * dimensions
    for stem in stems(text):
        digest = hashlib.blake2b(stem.encode(), digest_size=8 * BUCKETS_PER_WORD).digest()
        for k in range(BUCKETS_PER_WORD):
            number = int.from_bytes(digest[8 * k : 8 * k + 8], "big")
            vector[number % dimensions] += 1.0 if (number >> 63) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0:  # nothing to go on (only common words): a fixed direction, never NaN
        vector[0], norm = 1.0, 1.0
    return [round(v / norm, 7) for v in vector]


def _bad(message: str) -> web.Response:
    return web.json_response(error_json(400, message, "INVALID_ARGUMENT"), status=400)


def _one(request: dict[str, Any], where: str) -> tuple[list[float] | None, str | None]:
    content = request.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return None, f"* {where}.content: content is not specified"
    text = " ".join(str(p.get("text", "")) for p in content["parts"] if isinstance(p, dict))
    size = request.get("outputDimensionality")
    if size is None:
        return embed(text), None
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_DIMENSIONS <= size <= FULL_DIMENSIONS:
        return None, (
            f"* {where}.output_dimensionality: must be between {MIN_DIMENSIONS} and {FULL_DIMENSIONS}, got {size}"
        )
    return embed(text, size), None


async def serve_embed(
    request: web.Request, *, api_key: str, records: list[dict[str, Any]], model: str, method: str
) -> web.Response:
    """aiohttp handler for ``embedContent`` / ``batchEmbedContents``."""
    if request.method != "POST":
        return web.json_response(error_json(405, "Method not allowed.", "INVALID_ARGUMENT"), 405)
    if request.headers.get("x-goog-api-key") != api_key:
        return _bad(BAD_KEY_MESSAGE)
    try:
        body = normalise(json.loads(await request.read() or b"{}"))
    except ValueError as exc:
        return _bad(f"Invalid JSON payload received. {exc}")
    if not isinstance(body, dict):
        return _bad("Invalid JSON payload received. Expected an object.")
    records.append({"method": method, "model": model, "body": body})
    if method == "embedContent":
        values, problem = _one(body, "EmbedContentRequest")
        return _bad(problem) if problem else web.json_response({"embedding": {"values": values}})
    asked = body.get("requests")
    if not isinstance(asked, list) or not asked:
        return _bad("* BatchEmbedContentsRequest.requests: requests is not specified")
    if len(asked) > MAX_BATCH:
        return _bad(f"* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests can be in one batch")
    embeddings = []
    for n, one in enumerate(asked):
        where = f"BatchEmbedContentsRequest.requests[{n}]"
        named = str(one.get("model") or "") if isinstance(one, dict) else ""
        if not named:
            return _bad(f"* {where}.model: model is not specified")
        if named.removeprefix("models/") != model.removeprefix("models/"):
            return _bad(
                f"* {where}.model: the model in each request must match the model of the batch "
                f"(models/{model.removeprefix('models/')}), not {named}"
            )
        values, problem = _one(one, where)
        if problem:
            return _bad(problem)
        embeddings.append({"values": values})
    return web.json_response({"embeddings": embeddings})
