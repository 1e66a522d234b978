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
