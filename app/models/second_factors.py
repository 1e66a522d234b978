"""Proofs beyond the password: passkeys (WebAuthn credentials) and their single-use
challenges, an authenticator app's key (TOTP) with its recovery codes, and the sign-ins that
wait for a code."""

from __future__ import annotations

import peewee

from app.models.accounts import User
from app.models.base import BaseModel
from app.models.sessions import LoginSession


class Passkey(BaseModel):
    """A discoverable WebAuthn credential of one account. ``credential_id`` and ``public_key``
    (COSE) are base64url; ``sign_count`` is the authenticator's counter as last seen, and the
    backup flags say whether the key may be synced (``backup_eligible``) and is (``backed_up``)."""

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
    user_id: int  # the foreign key's raw value, which peewee adds (annotated for mypy)


class WebAuthnChallenge(BaseModel):
    """A challenge handed to one browser, used at most once before ``expires_at``. The browser
    holds a random handle to it (in Flask's signed cookie), stored here by hash; a registration
    or a re-authentication is bound to the account and session that asked for it as well."""

    id = peewee.AutoField()
    handle_hash = peewee.CharField(max_length=64, unique=True)
    purpose = peewee.CharField(max_length=16)
    challenge = peewee.CharField(max_length=128)
    user = peewee.ForeignKeyField(User, null=True, on_delete="CASCADE")
    session = peewee.ForeignKeyField(LoginSession, null=True, on_delete="CASCADE")
    expires_at = peewee.DoubleField(index=True)
    user_id: int | None
    session_id: int | None


class TwoFactor(BaseModel):
    """An account's authenticator app: its TOTP key (base32), on once ``confirmed_at`` is set,
    and the last time step a code was accepted for (a code is accepted once)."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, unique=True, on_delete="CASCADE")
    secret = peewee.CharField(max_length=64)
    created_at = peewee.DoubleField()
    confirmed_at = peewee.DoubleField(null=True)
    last_step = peewee.BigIntegerField(default=-1)


class RecoveryCode(BaseModel):
    """One single-use recovery code, stored by hash."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    code_hash = peewee.CharField(max_length=64)
    used_at = peewee.DoubleField(null=True)

    class Meta:
        indexes = ((("user", "code_hash"), True),)


class PendingSignIn(BaseModel):
    """A password accepted for an account with two-step sign-in: no session yet. The browser
    holds a random handle to it (by hash here) until a code is accepted or it expires."""

    id = peewee.AutoField()
    handle_hash = peewee.CharField(max_length=64, unique=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    method = peewee.CharField(max_length=16)
    target = peewee.CharField(max_length=2048, default="")
    expires_at = peewee.DoubleField(index=True)
    user_id: int
