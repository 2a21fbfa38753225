"""Search past calls by meaning: ``tars calls search --semantic`` and ``search_calls`` with
``semantic``.

Each finished call is embedded once (its summary, outcome and what was said) with the Gemini
embedding model through google-genai (``model.embedding_model``, gemini-embedding-001 by
default, 768 values a call) and the vector kept in the database (``tars.store.embeddings``):
by the server once a call is summed up, and by a search for any call still without one (or
changed since), 100 to a request. A search then embeds the question and ranks the calls by
cosine; for the best few it embeds their lines too, to show the line nearest the question.

The embedding API is https://ai.google.dev/api/embeddings; tests and ``--simulate`` reach the
Gemini emulator's deterministic one (``tars.emulators.gemini.embed``). With ``search.embeddings:
local`` the same is done on this machine by all-MiniLM-L6-v2 (``tars.local_embeddings``, 384
values, the ``local-embeddings`` extra). Each vector is stored with the model that made it and
only vectors of the configured model are compared: after a switch, the first search embeds
every call again with the new model.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tars import local_embeddings
from tars.endpoints import Endpoints
from tars.errors import UserError
from tars.project import Project
from tars.recall import Found, Search, filters_for
from tars.store.call_search import Hit, Match
from tars.store.contacts import names_by_id
from tars.store.embeddings import Pending, nearest, pending, save

#: Values per call: gemini-embedding-001 is trained so that a shorter vector keeps its
#: meaning (768 is one of the documented recommended sizes, with 1536 and 3072).
DIMENSIONS = 768
BATCH = 100  # batchEmbedContents takes at most 100 requests
#: Below this cosine a call is not about the question at all.
MIN_SCORE = 0.2
#: How many calls' lines are embedded to show the nearest line.
LINES_FOR = 5
MAX_LINES = 100

Run = Callable[[Callable[[Any], Any]], Awaitable[Any]]


#: model.embedding_model's default.
GEMINI_MODEL = "gemini-embedding-001"


def model_of(project: Project) -> str:
    return str(project.section("model").get("embedding_model") or GEMINI_MODEL)


def embeddings_of(project: Project) -> str:
    """Who embeds: ``gemini`` (the Gemini API) or ``local`` (this machine)."""
    return str(project.section("search").get("embeddings") or "gemini")


@dataclass(frozen=True)
class Embedder:
    """The model that embeds for a project: its name and size as stored, and how to reach it."""

    model: str
    dimensions: int
    embed: Callable[[Sequence[str], str], Awaitable[list[list[float]]]]  # (texts, task type)


def embedder_of(endpoints: Endpoints, project: Project) -> Embedder:
    if embeddings_of(project) == "local":
        why = local_embeddings.missing()
        if why:  # a project from the cache was checked when the extra was still there
            raise UserError(why)
        return Embedder(
            local_embeddings.MODEL,
            local_embeddings.DIMENSIONS,
            lambda texts, task: asyncio.to_thread(local_embeddings.embed, texts),  # one model: no task types
        )
    model = model_of(project)
    return Embedder(model, DIMENSIONS, lambda texts, task: gemini_embed(endpoints, model, texts, task))


async def gemini_embed(endpoints: Endpoints, model: str, texts: Sequence[str], task: str) -> list[list[float]]:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=endpoints.gemini_api_key or "unset", http_options=endpoints.http_options())
    config = types.EmbedContentConfig(task_type=task, output_dimensionality=DIMENSIONS)
    out: list[list[float]] = []
    for start in range(0, len(texts), BATCH):
        chunk = list(texts[start : start + BATCH])
        answer = await client.aio.models.embed_content(model=model, contents=chunk, config=config)
        values = [list(e.values or []) for e in answer.embeddings or []]
        if len(values) != len(chunk) or any(len(v) != DIMENSIONS for v in values):
            raise RuntimeError(f"{model} answered {len(values)} embeddings for {len(chunk)} texts")
        out.extend(values)
    return out


async def embed_pending(run: Run, endpoints: Endpoints, project: Project) -> int:
    """Embed every finished call that has no (current) embedding from the configured model;
    how many were embedded."""
    embedder = embedder_of(endpoints, project)
    model, dims = embedder.model, embedder.dimensions
    total = 0
    while True:
        todo: list[Pending] = await run(lambda s: pending(s, model, dims, limit=1000))
        if not todo:
            return total
        vectors = await embedder.embed([p.text for p in todo], "RETRIEVAL_DOCUMENT")
        done = list(zip(todo, vectors, strict=True))
        total += await run(lambda s, done=done: save(s, model, dims, done))


async def find_by_meaning(run: Run, endpoints: Endpoints, project: Project, search: Search, now: dt.datetime) -> Found:
    """The calls nearest ``search.query`` in meaning, narrowed as a word search is."""
    import numpy as np

    from tars.store.call_search import query_words
    from tars.store.calls import call_details

    query_words(search.query)  # the same "no words" answer as a word search
    embedder = embedder_of(endpoints, project)
    filters, who = await run(lambda s: filters_for(s, project, search, now))
    await embed_pending(run, endpoints, project)
    [wanted] = await embedder.embed([search.query], "RETRIEVAL_QUERY")
    ranked = await run(lambda s: nearest(s, wanted, embedder.model, embedder.dimensions, filters, limit=search.limit))
    ranked = [(call_id, score) for call_id, score in ranked if score >= MIN_SCORE]
    details = await run(lambda s: [call_details(s, call_id) for call_id, _ in ranked])
    names = await run(lambda s: names_by_id(s, (d.call.contact_id for d in details)))
    # The line nearest the question, for the best few calls.
    lines = [(n, line) for n, d in enumerate(details[:LINES_FOR]) for line in d.transcript if line.speaker != "system"]
    lines = lines[:MAX_LINES]
    best_line: dict[int, tuple[float, Any]] = {}
    if lines:
        vectors = await embedder.embed([line.text for _, line in lines], "RETRIEVAL_DOCUMENT")
        query = np.asarray(wanted, dtype="<f4")
        query = query / (np.linalg.norm(query) or 1.0)
        for (n, line), values in zip(lines, vectors, strict=True):
            vector = np.asarray(values, dtype="<f4")
            score = float(vector @ query / (np.linalg.norm(vector) or 1.0))
            if n not in best_line or score > best_line[n][0]:
                best_line[n] = (score, line)
    hits = []
    for n, (d, (_, score)) in enumerate(zip(details, ranked, strict=True)):
        if n in best_line:
            line = best_line[n][1]
            match = Match("transcript", line.text, line.speaker, line.at)
        else:
            match = Match("summary", d.call.summary or "")
        hits.append(Hit(d.call, score, match))
    return Found(hits, names, filters.since, who)
