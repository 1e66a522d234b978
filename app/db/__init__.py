"""The database: one proxy, its engine chosen from DATABASE_URL, pooled, with per-request hooks.

SQLite (WAL) is the embedded default; PostgreSQL is what several app instances share. What
differs between them is the engine's (``app.db.engine``); everything else here is the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import peewee
from flask import Flask, has_request_context
from playhouse.pool import MaxConnectionsExceeded

from app.db.engine import Engine

database = peewee.DatabaseProxy()

# Errors that mean "the database is not answering" (down, unreachable, timed out, or every
# pooled connection busy for the pool's wait timeout), mapped to 503 by errors.py.
UNAVAILABLE = (peewee.OperationalError, peewee.InterfaceError, MaxConnectionsExceeded)


def open_database(url: str, pool_size: int = 8, wait: float = 10) -> Engine:
    """The engine for ``sqlite:///path`` or ``postgresql://user@host/db``, whose requests wait
    at most ``wait`` seconds for a free pooled connection."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from app.db.sqlite import SqliteEngine

        # sqlite:///relative or sqlite:////absolute
        return SqliteEngine.open(unquote(parts.path[1:]), pool_size, wait)
    if parts.scheme in ("postgres", "postgresql"):
        from app.db.postgres import PostgresEngine

        return PostgresEngine.open(
            unquote(parts.path.lstrip("/")), host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432, user=unquote(parts.username or "postgres"),
            password=unquote(parts.password) if parts.password else None,
            pool_size=pool_size, wait=wait)
    raise ValueError(f"DATABASE_URL scheme {parts.scheme!r} is not sqlite or postgresql")


def engine() -> Engine:
    """The app's database, as the engine it is."""
    return cast(Engine, database.obj)


# The engine's operations, as the rest of the app calls them.
def execute(text: str, *params: object) -> Any:
    return engine().run(text, *params)


def fetch_one(text: str, *params: object, hot: bool = False) -> tuple[Any, ...] | None:
    return engine().fetch_one(text, *params, hot=hot)


def write_transaction() -> Any:
    return engine().write_transaction()


def locked(query: peewee.Select, kind: str = "FOR UPDATE") -> peewee.Select:
    return engine().locked(query, kind)


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
    from app import migrations, settings  # migrations import the models, which use the proxy

    logging.getLogger("peewee").addFilter(_QUERY_LOG_FILTER)  # once: the same object
    configured = settings.of(app)
    database.initialize(open_database(configured.database_url, configured.db_pool_size))
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
