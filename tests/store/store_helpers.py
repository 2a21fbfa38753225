"""Helpers for the store tests: the test's project and database, seen from outside TARS."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: Saturday 29 March 2025, 10:00 in Budapest: the clocks go forward the next night.
NOW = "2025-03-29T10:00:00+01:00"
TIMEZONE = "Europe/Budapest"
PG_HOST, PG_PORT, PG_DATABASE = "127.0.0.1", 5432, "test"


@cache
def postgres_user() -> str | None:
    """A user that can log in to the local PostgreSQL (trust auth), or None."""
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            pass
    except OSError:
        return None
    try:
        import psycopg
    except ImportError:
        return None
    for user in ("postgres", "root"):
        try:
            with psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user=user, connect_timeout=3):
                return user
        except psycopg.Error:
            continue
    return None


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user=postgres_user(), autocommit=True) as conn:
        conn.execute(sql)


@dataclass
class Store:
    """One test's project and database, and ways to look at them from outside TARS."""

    backend: str  # "sqlite" or "postgresql"
    root: Path  # the project folder (tars.yaml)
    home: Path  # TARS_HOME
    schema: str | None = None  # PostgreSQL: this test's schema

    @property
    def url(self) -> str:
        """The URL TARS uses by default for this test."""
        return self.variant()

    def variant(self, *, lock_timeout_ms: int | None = None, read_only: bool = False) -> str:
        """This test's database, but giving up on locks quickly, or read-only."""
        if self.backend == "sqlite":
            path = self.home / "tars.db"
            if read_only:
                return f"sqlite:///file:{path}?mode=ro&uri=true"
            return f"sqlite:///{path}" + (f"?timeout={lock_timeout_ms / 1000}" if lock_timeout_ms else "")
        options = f"-csearch_path={self.schema}"
        if lock_timeout_ms:
            options += f" -clock_timeout={lock_timeout_ms}"
        if read_only:
            options += " -cdefault_transaction_read_only=on"
        user = postgres_user()
        return f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}?options={quote(options)}"

    def use_url(self, url: str | None) -> None:
        """Point tars.yaml's storage.url at ``url`` (None: the default SQLite file)."""
        config = self.root / "tars.yaml"
        text = config.read_text().split("\n# test storage\n")[0]
        if url is not None:
            text += f"\n# test storage\nstorage:\n  url: '{url}'\n"
        config.write_text(text)

    @contextmanager
    def engine(self, url: str | None = None) -> Iterator[Any]:
        from sqlalchemy import create_engine

        engine = create_engine(url or self.url)
        try:
            yield engine
        finally:
            engine.dispose()

    def snapshot(self) -> dict[str, list[str]]:
        """Every row of every table (and the schema revision), for "nothing changed"."""
        from sqlalchemy import select, text
        from sqlmodel import SQLModel

        import tars.store.models  # noqa: F401

        with self.engine() as engine, engine.connect() as conn:
            rows = {
                name: sorted(map(repr, conn.execute(select(table))))
                for name, table in sorted(SQLModel.metadata.tables.items())
            }
            revisions = conn.execute(text("SELECT * FROM alembic_version"))
            rows["alembic_version"] = sorted(map(repr, revisions))
            return rows

    def sql(self, statement: str, **params: Any) -> list[tuple[Any, ...]]:
        from sqlalchemy import text

        with self.engine() as engine, engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(r) for r in result] if result.returns_rows else []

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Another process holds the write lock (SQLite) / a table lock (PostgreSQL)."""
        with self.engine() as engine, engine.connect() as conn:
            if self.backend == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                for table in ("contact", "reminder", "call"):
                    conn.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A store session on this test's database, as the server or scheduler would use it."""
        from tars.store.database import connect

        with connect(self.url) as db, db.session() as session:
            yield session


def seed_contact(store: Store, name: str, phone: str) -> int:
    """A contact put in directly (what `tars contacts add` would store), for tests about other things."""
    from tars.store.contacts import Rules, add_contact

    with store.session() as session:
        contact = add_contact(session, Rules("GB", ("owner", "contact", "unknown", "delegate")), name=name, phone=phone)
        assert contact.id is not None
        return contact.id


def seed_reminder(store: Store, text: str, hours_from_now: float, *, cancelled: bool = False) -> int:
    """A reminder put in directly, due ``hours_from_now`` after NOW."""
    import datetime as dt

    from tars.store.reminders import add_reminder, cancel

    now = dt.datetime.fromisoformat(NOW)
    with store.session() as session:
        reminder = add_reminder(
            session, text=text, due=now + dt.timedelta(hours=hours_from_now), timezone=TIMEZONE, now=now
        )
        assert reminder.id is not None
        if cancelled:
            cancel(session, reminder.id, now)
        return reminder.id
