"""SQLite connection settings: WAL with synchronous=NORMAL (no fsync per commit), kept by the
engine's pool rather than set up again for every transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tars.store.database import open_database


def test_a_sqlite_file_runs_in_wal_mode_with_normal_sync(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'tars.db'}")
    try:
        with db.session() as s:
            pragma = s.connection().exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert pragma("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.close()


def test_transactions_reuse_pooled_connections(tmp_path: Path) -> None:
    from sqlalchemy import event

    db = open_database(f"sqlite:///{tmp_path / 'tars.db'}")
    connects: list[object] = []
    event.listen(db.engine, "connect", lambda conn, _record: connects.append(conn))
    try:

        async def many() -> None:
            for _ in range(20):
                await db.run(lambda s: s.connection().exec_driver_sql("SELECT 1").scalar())

        asyncio.run(many())
        assert len(connects) <= 2, "a connection (and its PRAGMAs) per worker thread at most, not per run"
    finally:
        db.close()


def test_an_in_memory_database_keeps_its_memory_journal() -> None:
    db = open_database("sqlite://")
    try:
        with db.session() as s:
            assert s.connection().exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"
    finally:
        db.close()
