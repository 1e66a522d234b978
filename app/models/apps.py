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


class AppClient(BaseModel):
    """An app registered by the operator: a public client (no secret), its redirect URIs
    (JSON list) and whether its tokens are bound to a key by DPoP."""

    client_id = peewee.CharField(max_length=32, unique=True)
    name = peewee.CharField(max_length=80)
    redirect_uris = peewee.TextField()
    dpop = peewee.CharField(max_length=8, default="")  # "", "optional" or "required"
    created_at = peewee.DoubleField()

    class Meta:
        table_name = "app_client"


class AuthorizationCode(BaseModel):
    """A code ``/oauth/authorize`` gave an app, by SHA-256: one use, within a minute, by its
    client with its redirect URI and the verifier of its challenge, while the browser session
    that consented is live and its person's credentials have not changed. The app's session
    starts with that session's last proof (``proven_at``), never a fresher one."""

    code_hash = peewee.CharField(max_length=64, primary_key=True)
    client_id = peewee.CharField(max_length=32)
    redirect_uri = peewee.TextField()
    challenge = peewee.CharField(max_length=128)
    user_id = peewee.IntegerField()
    created_at = peewee.DoubleField()
    expires_at = peewee.DoubleField(index=True)
    used_at = peewee.DoubleField(null=True)
    session_id = peewee.IntegerField(null=True)  # the session its first use started
    consent_session_id = peewee.IntegerField(null=True)  # the browser session that consented
    proven_at = peewee.DoubleField(default=0)  # when that session last proved its person
    credential_epoch = peewee.IntegerField(default=0)  # its credential epoch then

    class Meta:
        table_name = "authorization_code"


class SeenProof(BaseModel):
    """A DPoP proof already used, by SHA-256 of its key's thumbprint and ``jti``, kept while
    its ``iat`` is within the proof window: a second use anywhere is refused."""

    digest = peewee.CharField(max_length=64, primary_key=True)
    expires_at = peewee.DoubleField(index=True)

    class Meta:
        table_name = "seen_proof"
