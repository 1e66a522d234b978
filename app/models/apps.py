"""The product's own apps: the access tokens' signing keys."""

from __future__ import annotations

import peewee

from app.models.base import BaseModel


class StoredKey(BaseModel):
    """One ES256 signing key: its public half in the clear, its private half encrypted under a
    key derived from ``SECRET_KEY`` (``app.signing``). ``signs_from`` is unique, so that two
    workers creating the first key at once create one."""

    kid = peewee.CharField(max_length=64, primary_key=True)
    public_jwk = peewee.TextField()  # JSON: crv, kty, x, y
    encrypted_private = peewee.TextField()
    created_at = peewee.DoubleField()
    signs_from = peewee.DoubleField(unique=True)

    class Meta:
        table_name = "signing_key"
