"""Scheduler tests: fast synthetic speech and a quick scheduler tick.

Speech runs at 20 characters a second (as in tests/server): decoding does not depend on
the length of the speech, this only shortens pipecat's real-time pacing of what the
assistant says. The scheduler looks at the database every 0.1 s instead of every 2 s: tests
move its clock without waking it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: needs the local PostgreSQL (skipped if unreachable)")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: an SQLite file, or a fresh schema in the local PostgreSQL (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'tars.db'}"
        return
    from tests.store.store_helpers import PG_DATABASE, PG_HOST, PG_PORT, pg_admin, postgres_user

    user = postgres_user()
    if user is None:
        pytest.skip(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}")
    schema = f"tars_sched_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE SCHEMA {schema}")
    try:
        yield f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}?options={quote(f'-csearch_path={schema}')}"
    finally:
        pg_admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(autouse=True)
def _fast_speech(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tars.emulators.speech.CHARS_PER_SECOND", 20.0)


@pytest.fixture(autouse=True)
def _quick_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tars.scheduler.core.POLL_SECONDS", 0.1)
