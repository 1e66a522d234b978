"""The product's own apps: signing keys any API can verify."""

from __future__ import annotations

import peewee

from app.db import database


def signing_keys() -> None:
    """The access tokens' ES256 signing keys, private halves encrypted."""

    class StoredKey(peewee.Model):
        kid = peewee.CharField(max_length=64, primary_key=True)
        public_jwk = peewee.TextField()
        encrypted_private = peewee.TextField()
        created_at = peewee.DoubleField()
        signs_from = peewee.DoubleField(unique=True)

        class Meta:
            database = database
            table_name = "signing_key"

    database.create_tables([StoredKey], safe=True)


def clients() -> None:
    """Registered apps, their authorization codes, the DPoP proofs already used, and which
    app a session belongs to."""

    class AppClient(peewee.Model):
        client_id = peewee.CharField(max_length=32, unique=True)
        name = peewee.CharField(max_length=80)
        redirect_uris = peewee.TextField()
        dpop = peewee.CharField(max_length=8, default="")
        created_at = peewee.DoubleField()

        class Meta:
            database = database
            table_name = "app_client"

    class AuthorizationCode(peewee.Model):
        code_hash = peewee.CharField(max_length=64, primary_key=True)
        client_id = peewee.CharField(max_length=32)
        redirect_uri = peewee.TextField()
        challenge = peewee.CharField(max_length=128)
        user_id = peewee.IntegerField()
        created_at = peewee.DoubleField()
        expires_at = peewee.DoubleField(index=True)
        used_at = peewee.DoubleField(null=True)
        session_id = peewee.IntegerField(null=True)

        class Meta:
            database = database
            table_name = "authorization_code"

    class SeenProof(peewee.Model):
        digest = peewee.CharField(max_length=64, primary_key=True)
        expires_at = peewee.DoubleField(index=True)

        class Meta:
            database = database
            table_name = "seen_proof"

    database.create_tables([AppClient, AuthorizationCode, SeenProof], safe=True)
    database.execute_sql("ALTER TABLE login_session ADD COLUMN client_id VARCHAR(32) "
                         "NOT NULL DEFAULT ''")
