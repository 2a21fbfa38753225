"""Call embeddings in the database (``call_embedding``): which calls still need one, storing
them, and the nearest calls to a query vector by brute-force cosine.

A vector is float32 little-endian in a plain BLOB (SQLite) / bytea (PostgreSQL), scaled to
length 1 when stored, so cosine is a dot product. Brute force is fine at personal scale:
bench/ measures it over 10,000 calls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from tars.store.call_search import Filters, filter_sql
from tars.store.models import Call, CallEmbedding, TranscriptLine, utcnow

#: Calls still under way (or not yet placed) are embedded once they end.
_UNFINISHED = ("queued", "ringing", "in-progress")
#: What of a call is embedded: its summary, outcome and what was said, cut to about the
#: 2,048 tokens gemini-embedding-001 reads (https://ai.google.dev/gemini-api/docs/embeddings).
MAX_CHARS = 6000


@dataclass(frozen=True)
class Pending:
    call_id: int
    text: str
    digest: str


def call_text(call: Call, lines: Sequence[tuple[str, str]]) -> str:
    """The text a call is embedded from."""
    parts = [call.summary or ""]
    if call.outcome is not None:
        parts.append(json.dumps(call.outcome, ensure_ascii=False))
    parts.extend(said for speaker, said in lines if speaker != "system")
    return "\n".join(p for p in parts if p)[:MAX_CHARS]


def digest_of(model: str, dimensions: int, said: str) -> str:
    return hashlib.sha256(f"{model}\n{dimensions}\n{said}".encode()).hexdigest()


def pending(session: Session, model: str, dimensions: int, limit: int = 1000) -> list[Pending]:
    """Finished calls with no embedding from this model and size, or one older than the
    call's last change (a summary written after it was embedded)."""
    rows = session.execute(
        text(
            'SELECT c.id FROM "call" c LEFT JOIN call_embedding e ON e.call_id = c.id '
            f"WHERE c.status NOT IN ({', '.join(repr(s) for s in _UNFINISHED)}) AND "
            "(e.call_id IS NULL OR e.model != :model OR e.dimensions != :dims OR e.updated_at < c.updated_at) "
            f"ORDER BY c.id LIMIT {int(limit)}"
        ),
        {"model": model, "dims": dimensions},
    )
    ids = [int(r[0]) for r in rows]
    if not ids:
        return []
    calls = {c.id: c for c in session.exec(select(Call).where(col(Call.id).in_(ids)))}
    said: dict[int, list[tuple[str, str]]] = {i: [] for i in ids}
    query = (
        select(TranscriptLine.call_id, TranscriptLine.speaker, TranscriptLine.text)
        .where(col(TranscriptLine.call_id).in_(ids))
        .order_by(col(TranscriptLine.at), col(TranscriptLine.id))
    )
    for call_id, speaker, line in session.exec(query):
        said[call_id].append((speaker, line))
    out = []
    existing = {e.call_id: e for e in session.exec(select(CallEmbedding).where(col(CallEmbedding.call_id).in_(ids)))}
    for call_id in ids:
        body = call_text(calls[call_id], said[call_id])
        digest = digest_of(model, dimensions, body)
        known = existing.get(call_id)
        if known is not None and known.digest == digest:  # the text is the same: only the time moved
            known.updated_at = utcnow()
            session.add(known)
            continue
        out.append(Pending(call_id, body, digest))
    return out


def pack(values: Iterable[float]) -> bytes:
    """A vector as stored: float32 little-endian, scaled to length 1."""
    import numpy as np

    vector = np.asarray(list(values), dtype="<f4")
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype("<f4").tobytes()


def save(session: Session, model: str, dimensions: int, done: Iterable[tuple[Pending, Sequence[float]]]) -> int:
    count = 0
    for item, values in done:
        row = session.get(CallEmbedding, item.call_id) or CallEmbedding(
            call_id=item.call_id, model=model, dimensions=dimensions, digest="", vector=b""
        )
        row.model, row.dimensions, row.digest, row.vector = model, dimensions, item.digest, pack(values)
        row.updated_at = utcnow()
        session.add(row)
        count += 1
    session.flush()
    return count


def nearest(
    session: Session, query: Sequence[float], model: str, dimensions: int, filters: Filters, *, limit: int
) -> list[tuple[int, float]]:
    """The ``limit`` calls whose embeddings are nearest ``query`` (call id, cosine), best first."""
    import numpy as np

    where, params = filter_sql(filters)
    rows = session.execute(
        text(
            'SELECT e.call_id, e.vector FROM call_embedding e JOIN "call" c ON c.id = e.call_id '
            f"WHERE e.model = :model AND e.dimensions = :dims{where}"
        ),
        {**params, "model": model, "dims": dimensions},
    ).all()
    if not rows:
        return []
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<f4").reshape(len(rows), dimensions)
    wanted = np.frombuffer(pack(query), dtype="<f4")
    scores = matrix @ wanted
    top = np.argsort(-scores, kind="stable")[:limit]
    return [(int(ids[i]), float(scores[i])) for i in top]


def stored(session: Session) -> dict[str, Any]:
    """How many calls have an embedding, by model and size (for tests and `tars doctor`)."""
    rows = session.exec(select(CallEmbedding.model, CallEmbedding.dimensions))
    counts: dict[str, Any] = {}
    for model, dimensions in rows:
        key = f"{model}/{dimensions}"
        counts[key] = counts.get(key, 0) + 1
    return counts
