"""Passkeys, the authenticator app (TOTP) and its recovery codes, and sign-ins waiting for a
code (issue 24)."""

from __future__ import annotations

import peewee

from app.db import database


def second_factors() -> None:
    """Passkeys and their challenges, authenticator-app keys, recovery codes and pending
    sign-ins: five new tables, frozen here as they were when added."""

    class Base(peewee.Model):
        class Meta:
            database = database
            legacy_table_names = False

    class User(Base):
        id = peewee.AutoField()

    class LoginSession(Base):
        id = peewee.AutoField()

    class Passkey(Base):
        id = peewee.AutoField()
        public_id = peewee.CharField(max_length=32, unique=True)
        user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
        credential_id = peewee.CharField(max_length=1400, unique=True)
        public_key = peewee.TextField()
        sign_count = peewee.BigIntegerField(default=0)
        backup_eligible = peewee.BooleanField(default=False)
        backed_up = peewee.BooleanField(default=False)
        aaguid = peewee.CharField(max_length=36, default="")
        name = peewee.CharField(max_length=40)
        created_at = peewee.DoubleField()
        last_used_at = peewee.DoubleField(null=True)

    class WebAuthnChallenge(Base):
        id = peewee.AutoField()
        handle_hash = peewee.CharField(max_length=64, unique=True)
        purpose = peewee.CharField(max_length=16)
        challenge = peewee.CharField(max_length=128)
        user = peewee.ForeignKeyField(User, null=True, on_delete="CASCADE")
        session = peewee.ForeignKeyField(LoginSession, null=True, on_delete="CASCADE")
        expires_at = peewee.DoubleField(index=True)

    class TwoFactor(Base):
        id = peewee.AutoField()
        user = peewee.ForeignKeyField(User, unique=True, on_delete="CASCADE")
        secret = peewee.CharField(max_length=64)
        created_at = peewee.DoubleField()
        confirmed_at = peewee.DoubleField(null=True)
        last_step = peewee.BigIntegerField(default=-1)

    class RecoveryCode(Base):
        id = peewee.AutoField()
        user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
        code_hash = peewee.CharField(max_length=64)
        used_at = peewee.DoubleField(null=True)

        class Meta:
            indexes = ((("user", "code_hash"), True),)

    class PendingSignIn(Base):
        id = peewee.AutoField()
        handle_hash = peewee.CharField(max_length=64, unique=True)
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        method = peewee.CharField(max_length=16)
        target = peewee.CharField(max_length=2048, default="")
        expires_at = peewee.DoubleField(index=True)

    database.create_tables([Passkey, WebAuthnChallenge, TwoFactor, RecoveryCode,
                            PendingSignIn], safe=True)
