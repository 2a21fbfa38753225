"""The store's test bench: a temporary project and state folder, on SQLite and PostgreSQL.

Every test that takes ``store`` runs twice: on an SQLite file in a temporary TARS_HOME, and
on PostgreSQL at 127.0.0.1:5432 (database ``test``, in a schema of its own that is dropped
afterwards) when one is reachable; otherwise the PostgreSQL run is skipped with the reason.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from store_helpers import (
    NOW,
    PG_DATABASE,
    PG_HOST,
    PG_PORT,
    TIMEZONE,
    Store,
    pg_admin,
    postgres_user,
)
from typer.testing import CliRunner, Result

from tars.scaffold import OwnerDetails, scaffold

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: needs the local PostgreSQL (skipped if unreachable)")
    config.addinivalue_line("markers", "fresh: start without a database (SQLite: no file yet)")


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project with its owner in Europe/Budapest: made once, copied per test."""
    root = tmp_path_factory.mktemp("example") / "project"
    scaffold(root, OwnerDetails(timezone=TIMEZONE))
    return root


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at the current schema, copied into each test's TARS_HOME (first use
    itself is tested in test_database.py)."""
    from tars.store.database import connect

    path = tmp_path_factory.mktemp("template") / "tars.db"
    with connect(f"sqlite:///{path}"):
        pass
    return path


@pytest.fixture(params=BACKENDS)
def store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    example: Path,
    migrated_sqlite: Path,
) -> Iterator[Store]:
    """A new project (owner in Europe/Budapest, region GB), TARS_HOME, clock and database."""
    backend = request.param
    schema = None
    if backend == "postgresql":
        if postgres_user() is None:
            where = f"{PG_HOST}:{PG_PORT}, database {PG_DATABASE!r}"
            pytest.skip(f"PostgreSQL is not reachable at {where}")
        schema = f"tars_test_{uuid.uuid4().hex[:12]}"
        pg_admin(f"CREATE SCHEMA {schema}")
    root, home = tmp_path / "project", tmp_path / "home"
    shutil.copytree(example, root)
    if backend == "sqlite" and "fresh" not in request.keywords:
        home.mkdir()
        shutil.copyfile(migrated_sqlite, home / "tars.db")
    monkeypatch.setenv("TARS_HOME", str(home))
    monkeypatch.setenv("TARS_NOW", NOW)
    found = Store(backend, root, home, schema)
    if backend == "postgresql":
        found.use_url(found.url)
    try:
        yield found
    finally:
        if schema:
            pg_admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def tars(store: Store) -> Callable[..., Result]:
    """Run the real CLI against the test project: ``tars("remind", "list")``."""
    from tars.cli.app import app

    def run(*args: str, now: str | None = None) -> Result:
        env = {"TARS_NOW": now} if now else None
        argv = ["--project", str(store.root), *map(str, args)]
        return CliRunner().invoke(app, argv, env=env, catch_exceptions=False)

    return run
