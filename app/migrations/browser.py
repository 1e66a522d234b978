"""Versions 1-7: the browser product's schema, as it grew (sessions, devices, mail, liveness)."""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate

from app.db import database


def initial() -> None:
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


def bounded_costs() -> None:
    """Version 2: what bounds the cost of hostile clients. Browsers known to each account
    (device cookies), anonymous refusals counted per address, kind and hour, each session's
    device name stored at sign-in, and the indexes a person's paged lists read in order."""

    class Base(peewee.Model):
        class Meta:
            database = database
            legacy_table_names = False

    class User(Base):
        pass

    class KnownDevice(Base):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        device_hash = peewee.CharField(max_length=64)
        first_seen_at = peewee.DoubleField()
        last_seen_at = peewee.DoubleField()

        class Meta:
            indexes = ((("user", "device_hash"), True),)

    class AnonymousFailure(Base):
        window_start = peewee.DoubleField()
        ip_address = peewee.CharField(max_length=64)
        kind = peewee.CharField(max_length=32)
        count = peewee.IntegerField()
        last_detail = peewee.CharField(max_length=255)

        class Meta:
            indexes = ((("window_start", "ip_address", "kind"), True),)

    database.create_tables([KnownDevice, AnonymousFailure], safe=True)
    # Plain SQL, not the migrator: for a NOT NULL column on SQLite it rebuilds the table, and
    # dropping the old one would cascade to every refresh token (nobody could stay signed in).
    database.execute_sql("ALTER TABLE login_session ADD COLUMN device_name VARCHAR(128) "
                         "NOT NULL DEFAULT ''")
    migrator = SchemaMigrator.from_database(database)
    migrate(
        migrator.add_index("login_session", ("user_id", "last_active_at")),
        migrator.add_index("login_session", ("user_id", "ended_at")),
        migrator.add_index("security_event", ("user_id", "created_at")),
    )


def mail() -> None:
    """Version 3: mail. Adds ``user.email_verified_at``, the outbox and the link tokens.

    Accounts made before addresses were verified count as confirmed (since they were
    created): an upgrade must not lock out anyone who could sign in before it.
    """

    class Base(peewee.Model):
        class Meta:
            database = database
            legacy_table_names = False

    class User(Base):  # only what the foreign keys below refer to
        pass

    class LoginSession(Base):
        pass

    class OutboxMessage(Base):
        recipient = peewee.CharField(max_length=254)
        subject = peewee.CharField(max_length=255)
        text_body = peewee.TextField()
        html_body = peewee.TextField()
        created_at = peewee.DoubleField()
        next_attempt_at = peewee.DoubleField(index=True)
        attempts = peewee.IntegerField()
        claim = peewee.CharField(max_length=32, null=True)
        claimed_until = peewee.DoubleField(null=True)
        sent_at = peewee.DoubleField(null=True, index=True)
        failed_at = peewee.DoubleField(null=True)
        last_error = peewee.CharField(max_length=255)

    class LinkToken(Base):
        token_hash = peewee.CharField(max_length=64, unique=True)
        purpose = peewee.CharField(max_length=16)
        user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
        email = peewee.CharField(max_length=254)
        session = peewee.ForeignKeyField(LoginSession, null=True, on_delete="CASCADE")
        created_at = peewee.DoubleField()
        expires_at = peewee.DoubleField()
        used_at = peewee.DoubleField(null=True)

    # Like version 1, safe on tables made from the models (as the benchmark's seeding does).
    if "email_verified_at" not in {column.name for column in database.get_columns("user")}:
        migrator = SchemaMigrator.from_database(database)
        migrate(migrator.add_column("user", "email_verified_at",
                                    peewee.DoubleField(null=True)))
        database.execute_sql('UPDATE "user" SET email_verified_at = created_at')
    database.create_tables([OutboxMessage, LinkToken], safe=True)


def rotation_protocol() -> None:
    """Version 4: credential epochs, the last address and device of each session, the address
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
        ("login_session", "last_device_name", "VARCHAR(128) NOT NULL DEFAULT ''"),
        ("login_session", "end_ip_address", "VARCHAR(64) NOT NULL DEFAULT ''"),
    ):
        database.execute_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    database.execute_sql("ALTER TABLE login_session DROP COLUMN access_not_before")
    database.execute_sql("UPDATE login_session SET last_user_agent = user_agent, "
                         "last_device_name = device_name, "
                         "last_ip_address = ip_address")


def devices() -> None:
    """Version 5: devices people can name, and each session's story. A session records the
    browser it started in (its device cookie, by hash), how it started, which session signed
    it out, and the requests refused after it ended; a known device gets a name and the
    browser parsed at its latest sign-in; an event, the browser its request came from.

    Sessions started before this have no device: each is its own until it is named.
    """
    for table, column, kind in (
        ("login_session", "device_hash", "VARCHAR(64) NOT NULL DEFAULT ''"),
        ("login_session", "start_method", "VARCHAR(16) NOT NULL DEFAULT 'password'"),
        ("login_session", "ended_by", "VARCHAR(32) NOT NULL DEFAULT ''"),
        ("login_session", "refused_uses", "INTEGER NOT NULL DEFAULT 0"),
        ("login_session", "last_refused_at", "DOUBLE PRECISION"),
        ("login_session", "last_refused_ip", "VARCHAR(64) NOT NULL DEFAULT ''"),
        ("login_session", "changes_noted", "INTEGER NOT NULL DEFAULT 0"),
        ("known_device", "name", "VARCHAR(40) NOT NULL DEFAULT ''"),
        ("known_device", "label", "VARCHAR(128) NOT NULL DEFAULT ''"),
        ("security_event", "device_hash", "VARCHAR(64) NOT NULL DEFAULT ''"),
    ):
        database.execute_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    migrator = SchemaMigrator.from_database(database)
    migrate(migrator.add_index("security_event", ("session_id", "created_at")))


def session_changes() -> None:
    """Version 6: the log of session changes that workers remembering liveness follow."""

    class SessionChange(peewee.Model):
        id = peewee.AutoField()
        session_id = peewee.IntegerField(null=True)
        user_id = peewee.IntegerField(null=True)
        created_at = peewee.DoubleField()

        class Meta:
            database = database
            table_name = "session_change"

    database.create_tables([SessionChange], safe=True)


def bound_keys() -> None:
    """Version 7: a session may be bound to a key (a browser's DBSC key, an app's DPoP key),
    by thumbprint; existing sessions are bound to none."""
    database.execute_sql("ALTER TABLE login_session ADD COLUMN key_thumbprint VARCHAR(64) "
                         "NOT NULL DEFAULT ''")
