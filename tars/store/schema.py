"""Schema migrations: Alembic scripts in ``tars/store/migrations``, applied on first use.

Every command checks the revision recorded in the database (one cheap query, no Alembic
import) against ``HEAD``. Only when they differ is Alembic loaded: an older database is
upgraded under a lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so two
processes starting together migrate once; a revision this TARS does not know means a newer
TARS wrote the database, and that is an error, not a crash.

A new migration: add ``migrations/versions/NNNN_what.py`` (down_revision = the previous
one) and set ``HEAD`` to its revision; a test checks that ``HEAD`` is Alembic's head and
that the migrated schema matches the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from tars.store.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

HEAD = "0013"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
_PG_LOCK_KEY = 0x7A125  # pg_advisory_xact_lock key for TARS migrations


def stored_revisions(connection: Connection) -> set[str]:
    """The revision(s) recorded in the database; empty for a new database."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return set()
    return {row[0] for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))}


def ensure_current(engine: Engine, where: str = "the database") -> None:
    """Bring the schema to ``HEAD``; raise DatabaseError for a database from a newer TARS."""
    with engine.connect() as connection:
        revisions = stored_revisions(connection)
        connection.rollback()
    if revisions == {HEAD}:
        return
    _upgrade(engine, where, revisions)


def _upgrade(engine: Engine, where: str, revisions: set[str]) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    _refuse_newer(scripts, revisions, where)  # before locking: a read-only newer one says so
    with engine.connect() as connection:
        _lock(connection)
        revisions = stored_revisions(connection)  # again: another process may have done it
        if revisions == {HEAD}:
            connection.commit()
            return
        _refuse_newer(scripts, revisions, where)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def _refuse_newer(scripts: ScriptDirectory, revisions: set[str], where: str) -> None:
    unknown = sorted(r for r in revisions if not _known(scripts, r))
    if unknown:
        raise DatabaseError(
            f"the database {where} was written by a newer TARS "
            f"(revision {', '.join(unknown)}; this TARS knows up to {HEAD}); upgrade TARS",
            "pip install --upgrade tars-assistant, or point storage.url at another database",
        )


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return scripts.get_revision(revision) is not None
    except (RevisionError, CommandError):
        return False


def _lock(connection: Connection) -> None:
    """One migrator at a time: SQLite takes the write lock now, PostgreSQL an advisory lock."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
