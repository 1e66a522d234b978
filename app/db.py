"""The database: one proxy, chosen from DATABASE_URL, pooled, with per-request hooks.

SQLite (WAL) is the embedded default; PostgreSQL is what several app instances share.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from weakref import WeakKeyDictionary

import peewee
from flask import Flask, has_request_context
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase, PooledSqliteDatabase

database = peewee.DatabaseProxy()

# Errors that mean "the database is not answering" (down, unreachable, timed out, or every
# pooled connection busy for the pool's wait timeout), mapped to 503 by errors.py.
UNAVAILABLE = (peewee.OperationalError, peewee.InterfaceError, MaxConnectionsExceeded)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
}
SQLITE_MINIMUM = (3, 35)
_SCHEMA_LOCK = 0x6761746568  # any constant shared by every instance: "gateh"


def open_database(url: str, pool_size: int = 8, wait: float = 10) -> peewee.Database:
    """Build a pooled database for ``sqlite:///path`` or ``postgresql://user@host/db``, whose
    requests wait at most ``wait`` seconds for a free connection."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if sqlite3.sqlite_version_info < SQLITE_MINIMUM:  # ALTER TABLE ... DROP COLUMN
            raise RuntimeError(f"SQLite {sqlite3.sqlite_version} is too old: Gatehouse needs "
                               f"{'.'.join(map(str, SQLITE_MINIMUM))} or newer")
        path = unquote(parts.path[1:])  # sqlite:///relative or sqlite:////absolute
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return PooledSqliteDatabase(
            path, pragmas=SQLITE_PRAGMAS, max_connections=pool_size, stale_timeout=300,
            timeout=wait, check_same_thread=False,
        )
    if parts.scheme in ("postgres", "postgresql"):
        # Every wait is bounded: connecting (3 s), a statement or a row lock (10 s), a
        # transaction left idle by a stuck worker (15 s, so its row locks are released), data
        # a vanished server never acknowledges (10 s), a free pooled connection (10 s). The
        # pool checks an idle connection with a round trip before lending it, so one broken
        # by an outage is discarded and replaced once the database is back.
        return PooledPostgresqlDatabase(
            unquote(parts.path.lstrip("/")), host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432, user=unquote(parts.username or "postgres"),
            password=unquote(parts.password) if parts.password else None,
            max_connections=pool_size, stale_timeout=300, timeout=wait, connect_timeout=3,
            options="-c statement_timeout=10000 -c lock_timeout=10000 "
                    "-c idle_in_transaction_session_timeout=15000",
            tcp_user_timeout=10_000,
        )
    raise ValueError(f"DATABASE_URL scheme {parts.scheme!r} is not sqlite or postgresql")


def is_postgres() -> bool:
    return isinstance(database.obj, peewee.PostgresqlDatabase)


@contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that takes the write lock up front.

    SQLite: ``BEGIN IMMEDIATE``, so two rotations never both read the old state. PostgreSQL:
    an ordinary transaction in which the caller locks rows with ``locked()``.
    """
    lock = () if is_postgres() else ("IMMEDIATE",)
    with database.atomic(*lock):
        yield


def locked(query: peewee.Select, kind: str = "FOR UPDATE") -> peewee.Select:
    """``SELECT ... FOR UPDATE`` (or another ``kind`` of row lock) where the engine has it
    (SQLite already holds the write lock)."""
    # peewee takes the lock clause as a string too; its annotation says only bool.
    return query.for_update(kind) if is_postgres() else query  # type: ignore[arg-type]


@functools.cache
def bind(sql: str, param: str) -> str:
    """``sql`` with the engine's placeholder for ``{p}``, formatted once per statement and
    engine."""
    return sql.format(p=param)


def execute(sql: str, *params: object) -> Any:
    """Run a fixed statement written with ``{p}`` placeholders."""
    return database.execute_sql(bind(sql, database.param), params)


def fetch_one(sql: str, *params: object, prepared: bool = False) -> tuple[Any, ...] | None:
    """The first row of a fixed query written with ``{p}`` placeholders (``prepared``: see
    ``execute_prepared``).

    All rows are read, so the statement is reset at once: a SQLite statement left part-read
    would hold the connection's read snapshot open (stale reads later, and a WAL that cannot
    be checkpointed).
    """
    rows = (execute_prepared if prepared else execute)(sql, *params).fetchall()
    return rows[0] if rows else None


# The statements prepared on each PostgreSQL connection (a connection the pool replaces is a
# new object, with none).
_prepared_on: WeakKeyDictionary[Any, set[str]] = WeakKeyDictionary()


@functools.cache
def _numbered(sql: str) -> tuple[str, str, str]:
    """A name for ``sql``, its text with PostgreSQL's ``$1, $2...``, and the statement that
    executes it with the driver's ``%s`` for each."""
    first, *rest = sql.split("{p}")
    text = first + "".join(f"${number}{part}" for number, part in enumerate(rest, 1))
    name = f"gatehouse_{hashlib.sha1(sql.encode()).hexdigest()[:16]}"
    arguments = f" ({', '.join(['%s'] * len(rest))})" if rest else ""
    return name, text, f"EXECUTE {name}{arguments}"


def execute_prepared(sql: str, *params: object) -> Any:
    """``execute``, for a statement that runs on nearly every request of its kind. PostgreSQL
    plans each statement anew, which cost it more than running these (the rotation's read:
    360 µs a round trip, 170 prepared): each is prepared once per connection (a prepared
    statement outlives a rolled-back transaction). SQLite keeps its own statement cache."""
    if not is_postgres():
        return execute(sql, *params)
    name, text, run = _numbered(sql)
    prepared = _prepared_on.setdefault(database.connection(), set())
    if name in prepared:
        try:
            return database.execute_sql(run, params)
        except peewee.DatabaseError as error:  # dropped on the server (DISCARD ALL)
            if _code(error) != _UNKNOWN_STATEMENT or database.in_transaction():
                raise
            prepared.discard(name)
    try:
        database.execute_sql(f"PREPARE {name} AS {text}")
    except peewee.DatabaseError as error:
        if _code(error) != _ALREADY_PREPARED or database.in_transaction():
            raise
    prepared.add(name)
    return database.execute_sql(run, params)


_UNKNOWN_STATEMENT, _ALREADY_PREPARED = "26000", "42P05"  # PostgreSQL's error codes


def _code(error: peewee.DatabaseError) -> str | None:
    """PostgreSQL's code for the driver's error that peewee's wraps."""
    return getattr(getattr(error, "orig", None), "pgcode", None)


@contextmanager
def schema_lock() -> Iterator[None]:
    """One transaction in which only this process changes the schema: PostgreSQL's advisory
    lock (workers of several instances may start at once), SQLite's write lock."""
    with database.connection_context(), write_transaction():
        if is_postgres():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        yield


class WithoutParameters(logging.Filter):
    """peewee logs every query at DEBUG as ``(sql, params)``; the parameters include argon2
    and refresh-token hashes, which must reach no log at any level. The SQL keeps its
    placeholders; each parameter is logged as ``?``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, tuple) and len(record.msg) == 2:
            sql, params = record.msg
            record.msg = (sql, ["?"] * len(params or ()))
        return True


_QUERY_LOG_FILTER = WithoutParameters()


def init_app(app: Flask) -> None:
    from app import migrations  # imports the models, which register themselves on the proxy

    logging.getLogger("peewee").addFilter(_QUERY_LOG_FILTER)  # once: the same object

    database.initialize(open_database(app.config["DATABASE_URL"],
                                      app.config["GATEHOUSE_DB_POOL_SIZE"]))
    schema = _Schema(migrations.upgrade)
    schema.ensure()
    app.before_request(schema.ensure)
    app.teardown_request(_close)


class _Schema:
    """Brings the schema to its newest version at start, or, when the database does not answer
    then, before the first request after it does. A worker (re)started during an outage must
    boot: gunicorn stops the whole server when a worker fails to. Meanwhile its requests run as
    usual: those that need the database answer 503, the sign-in page still renders."""

    def __init__(self, upgrade: Callable[[], object]) -> None:
        self.upgrade, self.ready = upgrade, False

    def ensure(self) -> None:
        if self.ready:
            return
        try:
            self.upgrade()
        except (peewee.DatabaseError, *UNAVAILABLE) as error:
            if _answers():  # the database is up: the upgrade itself failed
                raise SchemaUpgradeFailed(f"the schema upgrade failed: {error}") from error
            if not has_request_context():
                logging.getLogger("gatehouse.db").warning(
                    "database unavailable at start; the schema is upgraded when it answers")
            return  # the next request tries again
        finally:
            # No connection opened at start may outlive it: under ``gunicorn --preload`` the
            # workers are forked from this process and must never share one socket.
            database.close_idle()
        self.ready = True


class SchemaUpgradeFailed(RuntimeError):
    """A migration failed against a database that answers: an operator's problem, which no
    retry on the next request would solve. At start it stops the app with the reason."""


def _answers() -> bool:
    try:
        with database.connection_context():
            database.execute_sql("SELECT 1")
    except UNAVAILABLE:
        return False
    return True


def _close(exc: BaseException | None) -> None:
    """Give this request's connection back to the pool, whatever happened.

    A connection is never kept by a thread between requests: Flask's development server (and
    any server that starts a thread per request) ends that thread after one response, and a
    connection it still held would be lost to the pool for good.
    """
    # The proxy is resolved once: each call through it costs a lookup, on every request.
    db = database.obj
    if not db.is_closed():
        db.close()
