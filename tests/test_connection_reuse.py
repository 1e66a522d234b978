"""Connections between requests: every request hands its connection back to the pool, so a
thread that ends after one response (Flask's development server starts one per request) never
takes a connection with it, and the pool's health check replaces one the server dropped."""

from __future__ import annotations

import threading

import psycopg2
import pytest
from support import browser, on_postgres, signed_up

from app.db import database, engine


def test_every_request_gives_its_connection_back(app, ada):
    assert ada.get("/api/me").status_code == 200
    assert database.is_closed()


def test_threads_that_end_after_one_request_never_exhaust_the_pool(make_app, client):
    """What `flask run` does: a new thread per request, many more than the pool holds."""
    app = make_app(GATEHOUSE_DB_POOL_SIZE=2)
    statuses: list[int] = []

    def one_request() -> None:
        statuses.append(app.test_client().get("/healthz").status_code)

    for _ in range(12):  # six times the pool
        thread = threading.Thread(target=one_request)
        thread.start()
        thread.join(timeout=30)
    assert statuses == [200] * 12


def test_recovers_after_the_database_drops_every_connection(app, ada, database_url):
    if not on_postgres():
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): SQLite has no server to restart")
    assert ada.get("/api/me").status_code == 200
    with psycopg2.connect(database_url) as admin:
        admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    admin.close()
    assert [ada.get("/api/me").status_code for _ in range(4)] == [200, 200, 200, 200]


def test_prepared_statements_survive_being_dropped_or_forgotten(make_app, postgres_url):
    """The liveness lookup is a statement prepared once per connection. When the server has
    dropped it (``DISCARD ALL``), or the app has lost count of it while the server still holds
    it, the next request prepares or uses it all the same."""

    app = make_app(GATEHOUSE_REMEMBERED_SESSIONS=0, GATEHOUSE_DB_POOL_SIZE=1)
    laptop = browser(app)
    signed_up(laptop)
    assert laptop.get("/api/me").status_code == 200
    with app.app_context(), database.connection_context():
        database.execute_sql("DISCARD ALL")
    assert laptop.get("/api/me").status_code == 200
    with app.app_context(), database.connection_context():
        engine().forget_prepared()
    assert laptop.get("/api/me").status_code == 200
