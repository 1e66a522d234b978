"""The keys sessions are bound to (DBSC), and the challenges their proofs must answer."""

from __future__ import annotations

import peewee

from app.models.base import BaseModel
from app.models.sessions import LoginSession


class SessionKey(BaseModel):
    """The public key a browser registered for its session (a JWK, public members only), by
    its RFC 7638 thumbprint: ``login_session.key_thumbprint`` says which one binds it, and a
    refresh's proof is verified with this one."""

    id = peewee.AutoField()
    session = peewee.ForeignKeyField(LoginSession, on_delete="CASCADE")
    thumbprint = peewee.CharField(max_length=64)
    jwk = peewee.TextField()
    created_at = peewee.DoubleField()

    class Meta:
        indexes = ((("session", "thumbprint"), True),)


class KeyChallenge(BaseModel):
    """A challenge issued to one session, by hash: a proof answers it once, before it
    expires."""

    id = peewee.AutoField()
    session = peewee.ForeignKeyField(LoginSession, on_delete="CASCADE", index=True)
    challenge_hash = peewee.CharField(max_length=64, unique=True)
    expires_at = peewee.DoubleField()
