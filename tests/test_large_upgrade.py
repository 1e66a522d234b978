"""An in-place upgrade of a large database: migrations run without the request timeouts, and
workers starting meanwhile wait for the upgrade however long it takes, instead of failing to
boot (which stops gunicorn)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

import psutil
import psycopg2
import pytest
from polling import eventually
from servers import Server, request, server_env
from support import SECRET, is_postgres, reset_database

from app import migrations, tokens
from app.carriers import SESSION_COOKIE
from app.db import database, open_database
from app.db.postgres import SCHEMA_LOCK
from app.db.sqlite import PRAGMAS

SESSIONS = 1_000_000
# Longer than a request waits for a lock (PostgreSQL's lock_timeout, SQLite's busy_timeout).
REQUEST_LOCK_WAIT = PRAGMAS["busy_timeout"] / 1000


def test_migrations_run_without_the_request_timeouts(make_app, database_url, monkeypatch):
    """A migration rewriting millions of rows takes longer than any request may: it runs with
    no statement or lock timeout, and requests have theirs back afterwards."""
    seen = {}

    def probe() -> None:
        seen.update(timeouts())

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, probe])
    monkeypatch.setattr(migrations, "LATEST", migrations.LATEST + 1)
    make_app()
    if is_postgres(database_url):
        assert seen == {"statement_timeout": "0", "lock_timeout": "0"}
    else:
        assert seen == {"busy_timeout": 2**31 - 1}
    with database.connection_context():
        assert timeouts() == ({"statement_timeout": "10s", "lock_timeout": "10s"}
                              if is_postgres(database_url) else {"busy_timeout": 10_000})


def timeouts() -> dict[str, object]:
    if database.obj.param == "%s":  # PostgreSQL
        return {name: database.execute_sql(f"SHOW {name}").fetchone()[0]
                for name in ("statement_timeout", "lock_timeout")}
    return {"busy_timeout": database.execute_sql("PRAGMA busy_timeout").fetchone()[0]}


def newest_session_migration(scratch: str) -> int:
    """The version of the newest migration that changes ``login_session`` (its columns or
    indexes), found by applying them one by one to an empty database."""
    database.initialize(open_database(scratch))
    newest, before = 0, None
    with database.connection_context():
        for version in range(1, migrations.LATEST + 1):
            migrations.upgrade(to=version)
            shape = ({c.name for c in database.get_columns("login_session")},
                     {i.name for i in database.get_indexes("login_session")})
            if shape != before and version > 1:
                newest = version
            before = shape
    database.close_all()
    return newest


COLUMNS = ("public_id, user_id, created_at, authenticated_at, last_active_at, "
           "absolute_expires_at, generation, current_hash, rotated_at, successor_seen, "
           "user_agent, ip_address, ended_at, end_reason")
# Ended sessions, as a busy site keeps for 30 days; the numbers come from the database.
GENERATE = {
    "postgresql": (f"INSERT INTO login_session ({COLUMNS}) SELECT 'g' || n, %s, %s, %s, %s, "
                   "%s, 0, lpad(n::text, 64, '0'), %s, FALSE, 'Mozilla/5.0', '198.51.100.1', %s, "
                   f"'signed_out' FROM generate_series(1, {SESSIONS}) AS n"),
    "sqlite": (f"INSERT INTO login_session ({COLUMNS}) SELECT 'g' || n, ?, ?, ?, ?, ?, 0, "
               "printf('%064x', n), ?, 0, 'Mozilla/5.0', '198.51.100.1', ?, 'signed_out' "
               f"FROM (WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c "
               f"WHERE n < {SESSIONS}) SELECT n FROM c)"),
}


INDEXES = {
    "postgresql": ("SELECT indexdef FROM pg_indexes WHERE tablename = 'login_session' "
                   "AND indexname NOT LIKE '%%pkey'"),
    "sqlite": ("SELECT sql FROM sqlite_master WHERE type = 'index' "
               "AND tbl_name = 'login_session' AND sql IS NOT NULL"),
}


def index_name(definition: str) -> str:
    """The name in ``CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON ...``."""
    return definition.split(" ON ")[0].split()[-1]


def fill(url: str, now: float) -> str:
    """One person, a million ended sessions and one live one; the live one's cookie."""
    engine = "postgresql" if is_postgres(url) else "sqlite"
    handle = tokens.new_handle()
    digest = tokens.token_hash(tokens.refresh_token(tokens.Keys.derive(SECRET), handle))
    with database.connection_context(), database.atomic():
        if engine == "postgresql":  # filling is slow: no timeout, no per-row key checks
            database.execute_sql("SET LOCAL statement_timeout = 0; "
                                 "SET LOCAL session_replication_role = replica")
        # Indexes are built once the rows are in, as a restore does: much faster than row by row.
        indexes = [row[0] for row in database.execute_sql(INDEXES[engine]).fetchall()]
        for each in indexes:
            database.execute_sql(f"DROP INDEX {index_name(each)}")
        database.execute_sql(
            'INSERT INTO "user" (public_id, email, password_hash, created_at, '
            "password_changed_at, email_verified_at) VALUES (%s, 'held@example.com', 'x', "
            "%s, %s, %s)".replace("%s", database.obj.param),
            (tokens.new_public_id(), now, now, now))
        user_id = database.execute_sql('SELECT id FROM "user"').fetchone()[0]
        database.execute_sql(GENERATE[engine], (user_id, now, now, now, now + 86400, now, now))
        for each in indexes:
            database.execute_sql(each)
        session = database.execute_sql(
            f"INSERT INTO login_session ({COLUMNS}) VALUES ({', '.join(['%s'] * 14)})"
            .replace("%s", database.obj.param),
            (tokens.new_public_id(), user_id, now, now, now, now + 86400, 0, digest, now,
             False, "Mozilla/5.0", "198.51.100.1", None, None))
        session_id = session.lastrowid if engine == "sqlite" else database.execute_sql(
            "SELECT id FROM login_session WHERE current_hash = %s", (digest,)).fetchone()[0]
        database.execute_sql(
            "INSERT INTO refresh_token (token_hash, session_id, generation, issued_at) "
            "VALUES (%s, %s, 0, %s)".replace("%s", database.obj.param),
            (digest, session_id, now))
    return handle


def waiting_workers(url: str, server: Server) -> int:
    """How many of the server's workers are waiting for the schema lock (on SQLite: have the
    database open, which a worker first does for the lock)."""
    if server.process.poll() is not None:
        raise AssertionError(f"gunicorn exited: {server.output()}")
    if is_postgres(url):
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' "
                           "AND NOT granted")
            waiting = cursor.fetchone()[0]
        connection.close()
        return waiting
    path = url.removeprefix("sqlite:///")
    workers = psutil.Process(server.process.pid).children()
    return sum(any(f.path == path for f in worker.open_files()) for worker in workers)


@contextmanager
def schema_lock_held(url: str):
    """The schema lock, held by another process (an instance whose upgrade is running)."""
    if is_postgres(url):
        connection = psycopg2.connect(url)
        connection.cursor().execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    else:
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        connection.rollback()
        connection.close()


@pytest.mark.slow
def test_a_million_sessions_upgrade_while_starting_workers_wait(database_url, tmp_path):
    """From the schema before the newest migration that touches ``login_session``, with a
    million sessions in it: gunicorn's workers start while another process holds the schema
    lock longer than a request would wait; they wait, then upgrade, and the live session is
    still signed in."""
    version = newest_session_migration(f"sqlite:///{tmp_path / 'scratch.sqlite3'}")
    database.initialize(open_database(database_url))
    try:
        with database.connection_context():
            migrations.upgrade(to=version - 1)
        started = time.monotonic()
        handle = fill(database_url, time.time())
        filled = time.monotonic() - started
        database.close_all()
        server = Server(server_env(database_url, SECRET), workers=2, threads=8)
        with schema_lock_held(database_url):
            server.launch()
            eventually(lambda: waiting_workers(database_url, server) == 2, within=60,
                       what="both workers waiting for the schema lock")
            time.sleep(REQUEST_LOCK_WAIT + 2)  # the workers wait past a request's timeout
            assert server.process.poll() is None, server.output()
        released = time.monotonic()
        try:
            server.wait_ready()
            upgraded = time.monotonic() - released
            reply = request(server.port, "GET", "/api/me", cookies={SESSION_COOKIE: handle})
            assert reply.status == 200, reply.body[:300]
        finally:
            server.stop()
        with database.connection_context():
            assert migrations.upgrade() == migrations.LATEST
            count = database.execute_sql("SELECT COUNT(*) FROM login_session").fetchone()[0]
        assert count == SESSIONS + 1
        print(f"\n{SESSIONS:,} sessions from version {version - 1}: filled in {filled:.1f} s, "
              f"upgraded and serving {upgraded:.1f} s after the lock was released")
    finally:
        reset_database()
