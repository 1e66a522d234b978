"""Device-bound sessions (DBSC): the keys sessions are bound to, and their challenges."""

from __future__ import annotations

import peewee

from app.db import database


def device_keys() -> None:
    """Version 8: ``session_key`` (a bound session's public key) and ``key_challenge`` (the
    single-use challenges a registration or refresh proof answers). Frozen copies of the
    models, so that this version never changes with them."""

    class LoginSession(peewee.Model):
        id = peewee.AutoField()

        class Meta:
            database = database
            table_name = "login_session"

    class SessionKey(peewee.Model):
        id = peewee.AutoField()
        session = peewee.ForeignKeyField(LoginSession, on_delete="CASCADE")
        thumbprint = peewee.CharField(max_length=64)
        jwk = peewee.TextField()
        created_at = peewee.DoubleField()

        class Meta:
            database = database
            table_name = "session_key"
            indexes = ((("session", "thumbprint"), True),)

    class KeyChallenge(peewee.Model):
        id = peewee.AutoField()
        session = peewee.ForeignKeyField(LoginSession, on_delete="CASCADE", index=True)
        challenge_hash = peewee.CharField(max_length=64, unique=True)
        expires_at = peewee.DoubleField()

        class Meta:
            database = database
            table_name = "key_challenge"

    database.create_tables([SessionKey, KeyChallenge], safe=True)
