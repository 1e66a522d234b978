"""Schema versions: a database made before versions existed is upgraded at start, and nobody
it held is signed out; the migrated schema is the one the models declare."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg2
import pytest
from support import auth_cookies_set, browser, is_postgres

from app import migrations
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.db import SchemaUpgradeFailed, database
from app.models import ALL, SchemaVersion

FIXTURES = Path(__file__).parent / "fixtures"
# Made by the code of main before this change: a user signed in, one live session.
BEFORE = json.loads((FIXTURES / "before-versions.json").read_text())


def load_dump(url: str) -> str:
    """Fill the empty test database from the dump for its engine; return the engine name."""
    if is_postgres(url):
        with psycopg2.connect(url) as conn, conn.cursor() as cursor:
            cursor.execute((FIXTURES / "before-versions.postgresql.sql").read_text())
        conn.close()
        return "postgresql"
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.executescript((FIXTURES / "before-versions.sqlite.sql").read_text())
    conn.close()
    return "sqlite"


def versions() -> list[int]:
    with database.connection_context():
        return [row.version for row in SchemaVersion.select().order_by(SchemaVersion.version)]


def test_an_old_database_is_upgraded_and_its_sessions_still_sign_in(make_app, database_url,
                                                                     clock):
    engine = load_dump(database_url)
    clock.now = BEFORE["made_at"] + 3600  # the access token has expired, the session has not
    app = make_app()
    assert versions() == list(range(1, migrations.LATEST + 1))
    held = browser(app)
    held.set_cookie(SESSION_COOKIE, BEFORE["session_cookie"][engine])
    response = held.get("/api/me")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["email"] == BEFORE["email"]
    assert {c.split("=")[0] for c in auth_cookies_set(response)} == {ACCESS_COOKIE,
                                                                     SESSION_COOKIE}


def test_each_migration_runs_once(make_app):
    make_app()
    make_app()  # a second start, as another worker's: nothing to do
    assert versions() == list(range(1, migrations.LATEST + 1))
    assert migrations.upgrade() == migrations.LATEST


@pytest.mark.parametrize("model", ALL, ids=lambda model: model.__name__)
def test_the_migrated_schema_is_what_the_models_declare(app, model):
    """A model changed without its migration fails here."""
    with database.connection_context():
        columns = {column.name for column in database.get_columns(model._meta.table_name)}
        indexes = {tuple(index.columns) for index in database.get_indexes(
            model._meta.table_name) if not index.name.endswith("_pkey")}
    assert columns == {field.column_name for field in model._meta.sorted_fields}
    declared = {(field.column_name,) for field in model._meta.sorted_fields
                if (field.index or field.unique) and not field.primary_key}
    assert declared <= indexes


def test_a_failing_migration_stops_the_start_with_its_reason(make_app, monkeypatch):
    """Not "database unavailable", retried on every request: the database answers, the
    upgrade is what failed, and nothing of it was applied."""
    make_app()

    def broken() -> None:
        database.execute_sql("ALTER TABLE no_such_table ADD COLUMN x INTEGER")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    monkeypatch.setattr(migrations, "LATEST", migrations.LATEST + 1)
    with pytest.raises(SchemaUpgradeFailed, match="no_such_table"):
        make_app()
    assert versions() == list(range(1, migrations.LATEST))
