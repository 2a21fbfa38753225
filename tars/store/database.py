"""Opening the database: one engine per process, sessions per unit of work, errors in words.

    from tars.store.database import connect

    with connect(project.database_url) as db, db.session() as session:
        ...  # committed when the block ends, rolled back if it raises

``open_database(url)`` returns a long-lived ``Database`` (the server keeps one; call
``close()`` at shutdown); ``connect(url)`` is the same as a context manager for commands.
Either brings the schema up to date on first use (``tars.store.schema``).

SQLite runs in WAL mode with ``synchronous=NORMAL``, foreign keys on and a busy timeout
(5 s unless the URL says ``?timeout=``). A database that is locked, read-only, unreachable
or written by a newer TARS raises ``DatabaseError`` with what to do about it; nothing is
written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlmodel import Session, create_engine

from tars.store.errors import DatabaseError

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT = 5.0  # seconds to wait for another writer before "locked"


class Database:
    """An engine with the schema checked, and sessions that report errors in words."""

    def __init__(self, engine: Engine, where: str):
        self.engine = engine
        self.where = where  # the file or the URL without its password, for messages

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back if it raises.

        Objects stay readable after the commit (``expire_on_commit=False``).
        """
        session = Session(self.engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except DBAPIError as exc:
            _quiet_rollback(session)
            raise self.explain(exc) from exc
        except BaseException:
            _quiet_rollback(session)
            raise
        finally:
            session.close()

    async def run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one committed transaction, on a worker thread.

        For async code (the server, tools during a call): the event loop, and so the
        call's audio, never waits on the database.
        """

        def unit() -> T:
            with self.session() as session:
                return work(session)

        return await asyncio.to_thread(unit)

    def explain(self, exc: DBAPIError) -> Exception:
        """A ``DatabaseError`` in words for the failures a user can fix; else ``exc`` itself."""
        return explain(exc, self.where) or exc

    def close(self) -> None:
        self.engine.dispose()


def _quiet_rollback(session: Session) -> None:
    with suppress(DBAPIError):
        session.rollback()


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Connect to ``url`` and bring its schema up to date (unless ``migrate=False``)."""
    from tars.store import schema

    engine, where = _engine(url)
    database = Database(engine, where)
    if migrate:
        try:
            schema.ensure_current(engine, where)
        except DBAPIError as exc:
            engine.dispose()
            raise database.explain(exc) from exc
        except BaseException:
            engine.dispose()
            raise
    return database


@contextmanager
def connect(url: str, *, migrate: bool = True) -> Iterator[Database]:
    """``open_database`` for one command: the engine is disposed when the block ends."""
    database = open_database(url, migrate=migrate)
    try:
        yield database
    finally:
        database.close()


# --------------------------------------------------------------------------- engines


def _engine(url: str) -> tuple[Engine, str]:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            f"storage.url {url!r} is not a database URL",
            "e.g. sqlite:////path/to/tars.db or postgresql+psycopg://user@host/db",
        ) from None
    parsed = _with_driver(parsed)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        engine = create_engine(parsed)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise DatabaseError(
            f"no database driver for {parsed.drivername!r} ({exc})",
            "install it (PostgreSQL: pip install 'psycopg[binary]') or use postgresql+psycopg://",
        ) from None
    return engine, parsed.render_as_string(hide_password=True)


def _with_driver(url: URL) -> URL:
    """postgresql:// means psycopg (3) here, the driver TARS is tested with."""
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


def _sqlite_engine(url: URL) -> tuple[Engine, str]:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in str(url)
    if not in_memory and not database.startswith("file:"):
        path = Path(database).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"cannot create the folder for the database {path}: {exc.strerror}",
                "set TARS_HOME to a writable folder or storage.url in tars.yaml",
            ) from None
        _create_private(path)
        url = url.set(database=str(path))
    connect_args: dict[str, Any] = {}
    if "timeout" not in url.query:
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT
    engine = create_engine(url, connect_args=connect_args)
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine, database if database else ":memory:"


def _create_private(path: Path) -> None:
    """A new database file is the owner's alone (0600: contacts, transcripts, phone numbers);
    SQLite gives its -wal and -shm files the same mode. An existing file is left as it is."""
    import os

    # (it exists already, or the folder is read-only: then SQLite's own error says it better)
    with suppress(OSError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Once per connection (the engine's pool keeps them: not once per transaction)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        row = cursor.execute("PRAGMA journal_mode").fetchone()
        mode = str(row[0]).lower() if row else ""
        if mode not in ("wal", "memory"):
            # A read-only file stays in its mode; reading it still works.
            with suppress(Exception):
                row = cursor.execute("PRAGMA journal_mode=WAL").fetchone()
                mode = str(row[0]).lower() if row else mode
        if mode == "wal":
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit is still
            # durable if TARS crashes or is killed (the WAL is in the OS's hands), and the
            # file is never corrupted; only an OS crash or power loss can undo the last
            # transactions before a checkpoint. FULL (the default) would fsync the WAL on
            # every transcript batch a call writes.
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


# --------------------------------------------------------------------------- errors


def explain(exc: DBAPIError, where: str) -> DatabaseError | None:
    """The failures a user can do something about, in words; None for anything else."""
    text = str(exc.orig or exc).lower()
    code = str(getattr(exc.orig, "sqlstate", "") or getattr(exc.orig, "pgcode", "") or "").upper()
    if "database is locked" in text or "database table is locked" in text or code == "55P03":
        return DatabaseError(
            f"the database {where} is locked by another process; nothing was changed",
            "wait for the other TARS command or server to finish its write, then try again",
        )
    if "readonly database" in text or "read-only" in text or code == "25006":
        return DatabaseError(
            f"the database {where} is read-only; nothing was changed",
            "check the permissions of the file and its folder, or point storage.url at a writable database",
        )
    if "unable to open database file" in text:
        return DatabaseError(
            f"cannot open the database {where}",
            "check that the folder exists and is writable, or set TARS_HOME / storage.url",
        )
    if "file is not a database" in text or "database disk image is malformed" in text:
        return DatabaseError(
            f"{where} is not a usable SQLite database",
            "move it aside (TARS creates a new one) or restore it from a backup",
        )
    if exc.connection_invalidated or ("connection" in text and ("refused" in text or "failed" in text)):
        return DatabaseError(
            f"cannot connect to the database {where}: {str(exc.orig).strip().splitlines()[0]}",
            "check that the database server is running and storage.url in tars.yaml is right",
        )
    return None
