"""Search over 10,000 stored calls: full text (SQLite FTS5 / PostgreSQL tsvector) and by
meaning (brute-force cosine over the embeddings kept in the database: 768 values a call from
Gemini, 384 from the local model, ``search.embeddings: local``).

Each store gets N calls of eight lines (eight everyday words and one of 24 topics each) with
a summary and an outcome, and an embedding each
(the Gemini emulator's deterministic one, so no service is needed); then each query is timed
R times and the median reported. The embedding of the question itself (one request to the
Gemini API) is not included: it is the service's time, not TARS's (``bench.embeddings``
measures it, and the local model's, in one run). For the local model's row every stored vector
is then replaced, as a switch of ``search.embeddings`` does, by one of 384 values (the Gemini
vector's first half, scaled to length 1: a cosine's time depends on the count and the size, not
on the values, and embedding 10,000 calls with the real model takes its per-call time each).

    python -m bench.call_search                 # N = 10,000 on SQLite (and PostgreSQL if reachable)
    python -m bench.call_search --calls 500     # smoke test
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: What calls are about: each line has one or two of these among everyday words.
TOPICS = [
    "appointment",
    "tuesday",
    "plumber",
    "leak",
    "invoice",
    "delivery",
    "parcel",
    "dinner",
    "friday",
    "school",
    "meeting",
    "garage",
    "tyres",
    "insurance",
    "renewal",
    "doctor",
    "prescription",
    "haircut",
    "saturday",
    "dentist",
    "filling",
    "refund",
    "order",
    "table",
    "booking",
]
#: Everyday words: a vocabulary of 3,000, so a given word is in a few lines in a hundred.
EVERYDAY = [f"w{n:04d}" for n in range(3000)]
QUERIES = ("dentist", "leak plumber", "refund order", "insurance renewal tuesday")


def _fill(url: str, calls: int) -> None:
    from tars.emulators.gemini.embed import embed
    from tars.semantic import DIMENSIONS
    from tars.store.database import connect
    from tars.store.embeddings import pack
    from tars.store.models import Call, CallEmbedding, TranscriptLine

    rng = random.Random(20)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with connect(url) as db:
        for first in range(0, calls, 500):
            with db.session() as session:
                for n in range(first, min(first + 500, calls)):
                    said = [" ".join(rng.choices(EVERYDAY, k=8) + rng.choices(TOPICS, k=1)) for _ in range(8)]
                    summary = "Talked about " + ", ".join(rng.sample(TOPICS, 2)) + "."
                    call = Call(
                        direction="outbound", from_number="+447700900999", to_number=f"+4420794{n:05d}",
                        status="completed", started_at=start + dt.timedelta(minutes=n), summary=summary,
                        outcome={"status": rng.choice(["booked", "no_slot", "unknown"])},
                    )  # fmt: skip
                    session.add(call)
                    session.flush()
                    assert call.id is not None
                    for k, line in enumerate(said):
                        session.add(
                            TranscriptLine(call_id=call.id, speaker="caller" if k % 2 else "assistant", text=line)
                        )
                    vector = pack(embed(summary + " " + " ".join(said), DIMENSIONS))
                    session.add(
                        CallEmbedding(call_id=call.id, model="gemini-embedding-001", dimensions=DIMENSIONS,
                                      digest="bench", vector=vector)
                    )  # fmt: skip
        if db.dialect == "postgresql":  # the statistics autovacuum would gather on a live database
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()


def _median_ms(work: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return times[len(times) // 2]


def measure(url: str, calls: int, runs: int) -> list[tuple[str, float]]:
    from tars import local_embeddings
    from tars.emulators.gemini.embed import embed
    from tars.semantic import DIMENSIONS
    from tars.store.call_search import Filters, search_calls
    from tars.store.database import connect
    from tars.store.embeddings import nearest

    _fill(url, calls)
    rows = []
    with connect(url) as db, db.session() as session:
        for query in QUERIES:
            rows.append((f"words {query!r}", _median_ms(lambda q=query: search_calls(session, q, limit=20), runs)))
        wanted = embed("who fixes the leaking pipes?", DIMENSIONS)
        rows.append(
            (
                f"meaning (cosine over {calls} x {DIMENSIONS})",
                _median_ms(
                    lambda: nearest(session, wanted, "gemini-embedding-001", DIMENSIONS, Filters(), limit=20), runs
                ),
            )
        )
    _as_local(url)
    with connect(url) as db, db.session() as session:
        wanted = embed("who fixes the leaking pipes?", local_embeddings.DIMENSIONS)
        model, size = local_embeddings.MODEL, local_embeddings.DIMENSIONS
        rows.append(
            (
                f"meaning, local (cosine over {calls} x {size})",
                _median_ms(lambda: nearest(session, wanted, model, size, Filters(), limit=20), runs),
            )
        )
    return rows


def _as_local(url: str) -> None:
    """Every call's vector replaced by one of the local model's size, as a switch does."""
    import numpy as np
    from sqlmodel import select

    from tars import local_embeddings
    from tars.store.database import connect
    from tars.store.embeddings import pack
    from tars.store.models import CallEmbedding

    size = local_embeddings.DIMENSIONS
    with connect(url) as db, db.session() as session:
        for row in session.exec(select(CallEmbedding)):
            row.vector = pack(np.frombuffer(bytes(row.vector), dtype="<f4")[:size].tolist())
            row.model, row.dimensions = local_embeddings.MODEL, size
            session.add(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.call_search", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        targets = [("sqlite", f"sqlite:///{Path(folder) / 'tars.db'}")]
        pg = _postgres()
        if pg:
            targets.append(("postgresql", pg[0]))
        try:
            for name, url in targets:
                for label, ms in measure(url, args.calls, args.runs):
                    print(f"{name:<11} {label:<44} {ms:8.1f} ms (median of {args.runs})")
        finally:
            if pg:
                pg[1]()
    return 0


def _postgres() -> tuple[str, Any] | None:
    """A throw-away schema on the local PostgreSQL (127.0.0.1:5432, database test), if any."""
    import uuid

    try:
        import psycopg

        conn = psycopg.connect(host="127.0.0.1", port=5432, dbname="test", user="postgres", autocommit=True)
    except Exception:
        return None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()

    return f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}", drop


if __name__ == "__main__":
    sys.exit(main())
