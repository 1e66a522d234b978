"""Schema versions: numbered migrations, applied at start, recorded in ``schema_version``.

Every change to ``models.py`` ships as the next function in ``MIGRATIONS`` (with
``playhouse.migrate`` for columns, or plain ``create_tables`` for new tables); a version, once
released, never changes, so that every database reaches the same schema by the same steps.
``tests/test_migrations.py`` fails when the models and the migrated schema disagree.

All of it runs in one transaction under the schema lock (``db.schema_lock``): several workers
and instances may start at once, and only one of them upgrades; the others then find the
newest version recorded and do nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import peewee

from app.db import database, schema_lock
from app.models import SchemaVersion


def _initial() -> None:
    """Version 1: the schema as it was before versions were recorded.

    The tables are frozen here as they were then, not taken from ``models.py``: the models
    move on, version 1 does not. ``safe=True`` makes this also the upgrade of a database made
    by an earlier release, whose tables already exist.
    """

    class Base(peewee.Model):
        class Meta:
            database = database
            legacy_table_names = False

    class User(Base):
        public_id = peewee.CharField(max_length=32, unique=True)
        email = peewee.CharField(max_length=254, unique=True)
        password_hash = peewee.CharField(max_length=255)
        created_at = peewee.DoubleField()
        password_changed_at = peewee.DoubleField()

    class LoginSession(Base):
        public_id = peewee.CharField(max_length=32, unique=True)
        user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
        created_at = peewee.DoubleField()
        authenticated_at = peewee.DoubleField()
        last_active_at = peewee.DoubleField()
        absolute_expires_at = peewee.DoubleField()
        generation = peewee.IntegerField()
        current_hash = peewee.CharField(max_length=64)
        rotated_at = peewee.DoubleField()
        successor_seen = peewee.BooleanField()
        rekeyed_at = peewee.DoubleField(null=True)
        rekey_generation = peewee.IntegerField(null=True)
        access_not_before = peewee.IntegerField()
        user_agent = peewee.CharField(max_length=512)
        ip_address = peewee.CharField(max_length=64)
        ended_at = peewee.DoubleField(null=True, index=True)
        end_reason = peewee.CharField(max_length=32, null=True)

    class RefreshToken(Base):
        token_hash = peewee.CharField(max_length=64, unique=True)
        session = peewee.ForeignKeyField(LoginSession, on_delete="CASCADE", index=True)
        generation = peewee.IntegerField()
        issued_at = peewee.DoubleField()

    class SecurityEvent(Base):
        user = peewee.ForeignKeyField(User, null=True, on_delete="CASCADE")
        session = peewee.ForeignKeyField(LoginSession, null=True, on_delete="SET NULL")
        kind = peewee.CharField(max_length=32)
        detail = peewee.CharField(max_length=255)
        ip_address = peewee.CharField(max_length=64)
        created_at = peewee.DoubleField(index=True)

    class Throttle(Base):
        key = peewee.CharField(max_length=300, primary_key=True)
        window_start = peewee.DoubleField()
        failures = peewee.IntegerField()

    database.create_tables([User, LoginSession, RefreshToken, SecurityEvent, Throttle],
                           safe=True)


def _rotation_protocol() -> None:
    """Version 2: credential epochs, the last address and device of each session, the address
    that ended it; access tokens are refused by generation, not by issue time.

    Plain ``ALTER TABLE``, the same on both engines: SQLite adds a NOT NULL column with a
    default in place, where a rebuilt table would cascade-delete every session of its users.
    Existing sessions start with their sign-in address and device as the latest ones.
    """
    for table, column, kind in (
        ('"user"', "credential_epoch", "INTEGER NOT NULL DEFAULT 0"),
        ('"user"', "credential_reason", "VARCHAR(32) NOT NULL DEFAULT ''"),
        ("login_session", "credential_epoch", "INTEGER NOT NULL DEFAULT 0"),
        ("login_session", "last_user_agent", "VARCHAR(512) NOT NULL DEFAULT ''"),
        ("login_session", "last_ip_address", "VARCHAR(64) NOT NULL DEFAULT ''"),
        ("login_session", "end_ip_address", "VARCHAR(64) NOT NULL DEFAULT ''"),
    ):
        database.execute_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    database.execute_sql("ALTER TABLE login_session DROP COLUMN access_not_before")
    database.execute_sql("UPDATE login_session SET last_user_agent = user_agent, "
                         "last_ip_address = ip_address")


# Version n is MIGRATIONS[n - 1]. Append; never edit or reorder a released one.
MIGRATIONS: list[Callable[[], None]] = [_initial, _rotation_protocol]
LATEST = len(MIGRATIONS)


def upgrade(now: float | None = None) -> int:
    """Apply every migration the database has not had, in order; return its version now.

    Each is recorded with its number and when it was applied, in the same transaction as the
    change itself, so a failed upgrade leaves the database at the version it had.
    """
    with schema_lock():
        database.create_tables([SchemaVersion], safe=True)
        current = SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar() or 0
        for version in range(current + 1, LATEST + 1):
            MIGRATIONS[version - 1]()
            SchemaVersion.create(version=version, applied_at=now or time.time())
    return max(current, LATEST)
