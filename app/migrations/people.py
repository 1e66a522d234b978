"""Migrations for what protects a person whose password or address someone else has."""

from __future__ import annotations

import peewee

from app.db import database


def password_blocks() -> None:
    """Version 10: a password its owner disowned ("This wasn't me") stops working until a reset; the
    column is NULL, a working password, for every existing account."""
    database.execute_sql('ALTER TABLE "user" ADD COLUMN password_blocked_at DOUBLE PRECISION')


def alert_digests() -> None:
    """Version 11: the sign-ins that wait, beyond an hour's alerts, for the summary mail."""

    class Base(peewee.Model):
        class Meta:
            database = database
            legacy_table_names = False

    class User(Base):
        pass

    class LoginSession(Base):
        pass

    class DigestedSignIn(Base):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        session = peewee.ForeignKeyField(LoginSession, on_delete="CASCADE")
        window_end = peewee.DoubleField()
        message_id = peewee.IntegerField()

        class Meta:
            indexes = ((("user", "window_end"), False),)

    database.create_tables([DigestedSignIn], safe=True)
