"""The database under the commands: migrations, time zones, and the ways it can refuse to work."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import select
from store_helpers import Store
from typer.testing import Result

from tars.store import schema
from tars.store.database import connect
from tars.store.errors import DatabaseError
from tars.store.models import Reminder

Tars = Callable[..., Result]


@pytest.mark.fresh
def test_first_use_creates_the_schema_and_records_its_revision(store: Store, tars: Tars) -> None:
    assert tars("contacts", "list").exit_code == 0
    assert store.sql("SELECT version_num FROM alembic_version") == [(schema.HEAD,)]
    if store.backend == "sqlite":
        assert (store.home / "tars.db").is_file()  # in the state folder (TARS_HOME)


def test_head_is_the_last_migration_and_matches_the_models(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlmodel import SQLModel

    from tars.store.call_search import SEARCH_INDEXES, SEARCH_TABLE_ENDINGS

    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == schema.HEAD
    with connect(store.url) as db, db.engine.connect() as conn:
        # The full-text index (migration 0011) is no model: SQLite's FTS5 tables and their
        # shadow tables, PostgreSQL's GIN expression indexes.
        def not_search(name: str | None, kind: str, _parent: object) -> bool:
            if kind == "table":
                return not (name or "").endswith(SEARCH_TABLE_ENDINGS)
            return not (kind == "index" and name in SEARCH_INDEXES)

        opts = {"compare_type": True, "include_name": not_search}
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, SQLModel.metadata) == []


def test_migrations_ship_inside_the_package() -> None:
    assert schema.MIGRATIONS.is_relative_to(Path(schema.__file__).parent)
    assert (schema.MIGRATIONS / "env.py").is_file()
    assert (schema.MIGRATIONS / "versions" / "0001_initial.py").is_file()


def test_a_database_from_a_newer_tars_is_refused(store: Store, tars: Tars) -> None:
    assert tars("contacts", "add", "Alice", "+447700900123").exit_code == 0
    store.sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    before = store.snapshot()
    for args in (["contacts", "list"], ["contacts", "add", "Bob", "+447700900456"], ["remind", "list"]):
        result = tars(*args)
        assert result.exit_code == 1, result.output
        message = " ".join(result.stderr.split())
        assert "was written by a newer TARS (revision 9999_from_the_future" in message
        assert "upgrade TARS" in message
        assert "Traceback" not in result.output
    store.use_url(store.variant(read_only=True))  # even where nothing could be written anyway
    assert "was written by a newer TARS" in tars("contacts", "list").stderr
    assert store.snapshot() == before


def test_a_locked_database_is_a_clear_error_and_nothing_is_written(store: Store, tars: Tars) -> None:
    assert tars("contacts", "add", "Alice", "+447700900123").exit_code == 0
    store.use_url(store.variant(lock_timeout_ms=200))
    before = store.snapshot()
    with store.locked():
        for args in (["contacts", "add", "Bob", "+447700900456"], ["remind", "add", "x", "--at", "in 1 hour"]):
            result = tars(*args)
            assert result.exit_code == 1, result.output
            assert "is locked by another process; nothing was changed" in " ".join(result.stderr.split())
    assert store.snapshot() == before


@pytest.mark.parametrize("how", ["read-only connection", "read-only file"])
def test_a_read_only_database_is_a_clear_error_and_nothing_is_written(store: Store, tars: Tars, how: str) -> None:
    assert tars("contacts", "add", "Alice", "+447700900123").exit_code == 0
    path = store.home / "tars.db"
    if how == "read-only file":
        if store.backend != "sqlite":
            pytest.skip("file permissions are an SQLite matter")
        if os.geteuid() == 0:
            pytest.skip("root ignores file permissions")
        path.chmod(0o444)
        store.home.chmod(0o555)
    else:
        store.use_url(store.variant(read_only=True))
    before = store.snapshot()
    try:
        result = tars("contacts", "add", "Bob", "+447700900456")
        assert result.exit_code == 1, result.output
        assert "is read-only; nothing was changed" in " ".join(result.stderr.split())
        listing = tars("contacts", "list", "--json")  # reading still works
        assert listing.exit_code == 0 and "Alice" in listing.stdout
    finally:
        if how == "read-only file":
            store.home.chmod(0o755)
    assert store.snapshot() == before


def test_an_unreachable_or_unknown_database_is_a_clear_error(store: Store, tars: Tars) -> None:
    if store.backend != "sqlite":
        pytest.skip("the same test whatever the backend")
    store.use_url("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    result = tars("contacts", "list")
    assert result.exit_code == 1
    assert "cannot connect to the database" in result.stderr
    store.use_url("not a url")
    result = tars("contacts", "list")
    assert result.exit_code == 1 and "is not a database URL" in result.stderr
    store.use_url("mysql+nosuchdriver://x@localhost/db")
    result = tars("contacts", "list")
    assert result.exit_code == 1 and "no database driver" in result.stderr


def test_sqlite_runs_in_wal_mode_with_foreign_keys(store: Store, tars: Tars) -> None:
    if store.backend != "sqlite":
        pytest.skip("SQLite settings")
    with connect(store.url) as db, db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_timestamps_round_trip_timezone_aware_in_utc(store: Store) -> None:
    from zoneinfo import ZoneInfo

    due = dt.datetime(2025, 3, 30, 14, 0, tzinfo=ZoneInfo("Europe/Budapest"))
    with store.session() as session:
        session.add(Reminder(text="tz", due=due, timezone="Europe/Budapest"))
    with store.session() as session:
        stored = session.get(Reminder, 1)
        assert stored is not None
        assert stored.due == due and stored.due.tzinfo == dt.UTC
        assert stored.due.hour == 12
    with pytest.raises(Exception, match="naive datetime"), store.session() as session:
        session.add(Reminder(text="naive", due=dt.datetime(2025, 3, 30, 14, 0), timezone="UTC"))
        session.flush()
    with store.session() as session:
        assert [r.text for r in session.exec(select(Reminder))] == ["tz"]


@pytest.mark.fresh
def test_two_processes_starting_together_migrate_once(store: Store) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        try:
            barrier.wait()
            with connect(store.url):
                pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.sql("SELECT version_num FROM alembic_version") == [(schema.HEAD,)]


def test_database_error_is_a_user_error() -> None:
    from tars.errors import USER_ERROR, UserError

    assert issubclass(DatabaseError, UserError)
    assert DatabaseError("x").code == USER_ERROR
