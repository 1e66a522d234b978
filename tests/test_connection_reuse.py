"""Connections between requests (db._may_keep): kept by a worker thread on SQLite, handed back
to the pool's health check on PostgreSQL so that a dropped one never fails a request."""

from __future__ import annotations

import psycopg2
import pytest

from app.db import database, is_postgres


def test_sqlite_connection_is_kept_between_requests(app, ada):
    if is_postgres():
        pytest.skip("SQLite only: PostgreSQL connections go back to the pool's health check")
    ada.get("/api/me")
    kept = database.connection()
    assert ada.get("/api/me").status_code == 200
    assert database.connection() is kept


def test_postgres_connection_goes_back_to_the_pool(app, ada):
    if not is_postgres():
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL)")
    assert ada.get("/api/me").status_code == 200
    assert database.is_closed()  # checked in: the next request gets a checked connection


def test_recovers_after_the_database_drops_every_connection(app, ada, database_url):
    if not is_postgres():
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): SQLite has no server to restart")
    assert ada.get("/api/me").status_code == 200
    with psycopg2.connect(database_url) as admin:
        admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    admin.close()
    assert [ada.get("/api/me").status_code for _ in range(4)] == [200, 200, 200, 200]
