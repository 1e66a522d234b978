"""A worker thread keeps its database connection between requests (db._may_keep); a connection
the database has dropped must still cost at most one failed request, never a stuck worker."""

from __future__ import annotations

import psycopg2
import pytest

from app.db import database, is_postgres


def test_connection_is_kept_between_requests(app, ada):
    ada.get("/api/me")
    kept = database.connection()
    assert ada.get("/api/me").status_code == 200
    assert database.connection() is kept


def test_recovers_after_the_database_drops_every_connection(app, ada, database_url):
    if not is_postgres():
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): SQLite has no server to restart")
    assert ada.get("/api/me").status_code == 200
    with psycopg2.connect(database_url) as admin:
        admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    admin.close()
    first = ada.get("/api/me").status_code
    assert first in (200, 503), first
    assert [ada.get("/api/me").status_code for _ in range(3)] == [200, 200, 200]
