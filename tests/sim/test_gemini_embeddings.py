"""The emulator's embeddings through the real google-genai client: the wire of
``batchEmbedContents`` / ``embedContent``, deterministic values, and a paraphrase near its
original."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tars.emulators.gemini.emulator import GeminiEmulator

KEY = "test-key"
MODEL = "gemini-embedding-001"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
async def emu() -> AsyncIterator[GeminiEmulator]:
    emulator = GeminiEmulator(api_key=KEY)
    async with emulator:
        yield emulator
    assert emulator.errors == []


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


async def test_embed_content_through_the_sdk(emu: GeminiEmulator) -> None:
    client = genai.Client(api_key=KEY, http_options=emu.http_options())
    texts = [
        "The dentist can see him on Tuesday for a check-up.",
        "When is my appointment with the tooth doctor?",
        "The plumber comes on Monday to fix the leak.",
    ]
    config = types.EmbedContentConfig(output_dimensionality=256, task_type="RETRIEVAL_DOCUMENT")
    answer = await client.aio.models.embed_content(model=MODEL, contents=texts, config=config)
    assert answer.embeddings is not None
    vectors = [e.values or [] for e in answer.embeddings]
    assert [len(v) for v in vectors] == [256, 256, 256]
    dentist, paraphrase, plumber = vectors
    assert cosine(dentist, paraphrase) > 0.3 > abs(cosine(dentist, plumber))
    [asked] = emu.embed_requests
    assert asked["method"] == "batchEmbedContents"  # what google-genai sends in API-key mode
    assert asked["body"]["requests"][0] == {
        "content": {"parts": [{"text": texts[0]}], "role": "user"},
        "taskType": "RETRIEVAL_DOCUMENT",
        "outputDimensionality": 256,
        "model": f"models/{MODEL}",
    }
    again = await client.aio.models.embed_content(model=MODEL, contents=texts[:1], config=config)
    assert again.embeddings and again.embeddings[0].values == dentist  # deterministic
    full = await client.aio.models.embed_content(model=MODEL, contents="hello there")
    assert full.embeddings and len(full.embeddings[0].values or []) == 3072


async def test_the_rest_wire_is_as_strict_as_the_service(emu: GeminiEmulator) -> None:
    base = emu.http_options().base_url.rstrip("/")
    async with httpx.AsyncClient(verify=emu.client_ssl_context(), headers={"x-goog-api-key": KEY}) as http:
        one = await http.post(
            f"{base}/v1beta/models/{MODEL}:embedContent", json={"content": {"parts": [{"text": "hi"}]}}
        )
        assert one.status_code == 200 and len(one.json()["embedding"]["values"]) == 3072
        many = {"requests": [{"model": f"models/{MODEL}", "content": {"parts": [{"text": "x"}]}}] * 101}
        too_many = await http.post(f"{base}/v1beta/models/{MODEL}:batchEmbedContents", json=many)
        assert too_many.status_code == 400
        assert "at most 100 requests can be in one batch" in too_many.json()["error"]["message"]
        other = {"requests": [{"model": "models/gemini-3.5-flash", "content": {"parts": [{"text": "x"}]}}]}
        mismatch = await http.post(f"{base}/v1beta/models/{MODEL}:batchEmbedContents", json=other)
        assert mismatch.status_code == 400
        text_model = await http.post(
            f"{base}/v1beta/models/gemini-3.5-flash:embedContent", json={"content": {"parts": [{"text": "hi"}]}}
        )
        assert text_model.status_code == 404
    client = genai.Client(api_key="wrong", http_options=emu.http_options())
    with pytest.raises(errors.ClientError):
        await client.aio.models.embed_content(model=MODEL, contents="hi")
