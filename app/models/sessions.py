"""Sessions, their refresh tokens, what happened to them, and the changes liveness follows."""

from __future__ import annotations

import time

import peewee

from app.models.accounts import User
from app.models.base import BaseModel


class LoginSession(BaseModel):
    """One signed-in browser: a refresh-token family and everything the sessions page shows.

    ``generation`` counts rotations; ``current_hash`` is the hash of the newest refresh token,
    ``rotated_at`` when it was issued and ``successor_seen`` whether it is proven: a request
    carried it, or an access token issued with it.
    """

    id = peewee.AutoField()
    public_id = peewee.CharField(max_length=32, unique=True)
    user = peewee.ForeignKeyField(User, backref="sessions", on_delete="CASCADE", index=True)
    created_at = peewee.DoubleField()
    authenticated_at = peewee.DoubleField()  # last time the password was entered
    last_active_at = peewee.DoubleField()
    absolute_expires_at = peewee.DoubleField()
    generation = peewee.IntegerField(default=0)
    current_hash = peewee.CharField(max_length=64)
    rotated_at = peewee.DoubleField()
    successor_seen = peewee.BooleanField(default=True)
    # A re-key replaces the value with an unrelated random one: when, and the generation it
    # created. Access tokens issued with an older generation are refused.
    rekeyed_at = peewee.DoubleField(null=True)
    rekey_generation = peewee.IntegerField(null=True)
    # The user's credential epoch when this session's password was checked.
    credential_epoch = peewee.IntegerField(default=0)
    user_agent = peewee.CharField(max_length=512, default="")  # at sign-in
    device_name = peewee.CharField(max_length=128, default="")  # parsed once, at sign-in
    ip_address = peewee.CharField(max_length=64, default="")
    last_user_agent = peewee.CharField(max_length=512, default="")  # at the latest request
    last_ip_address = peewee.CharField(max_length=64, default="")
    last_device_name = peewee.CharField(max_length=128, default="")  # parsed when it changes
    ended_at = peewee.DoubleField(null=True, index=True)
    end_reason = peewee.CharField(max_length=32, null=True)
    end_ip_address = peewee.CharField(max_length=64, default="")  # who ended it, or the copy
    # The browser (its ``__Host-device`` cookie, by hash) this session was started in; "" for
    # sessions older than that, each its own device until it is named (``devices.rename``).
    device_hash = peewee.CharField(max_length=64, default="")
    start_method = peewee.CharField(max_length=16, default="password")  # or "reset"
    ended_by = peewee.CharField(max_length=32, default="")  # the session that signed it out
    # Requests refused after it ended: counted in full; an event each only up to a cap.
    refused_uses = peewee.IntegerField(default=0)
    last_refused_at = peewee.DoubleField(null=True)
    last_refused_ip = peewee.CharField(max_length=64, default="")
    changes_noted = peewee.IntegerField(default=0)  # address/device change events recorded
    # The key a DBSC browser or a DPoP app proves it holds, by RFC 7638 thumbprint ("": none).
    key_thumbprint = peewee.CharField(max_length=64, default="")
    client_id = peewee.CharField(max_length=32, default="")  # the app's; "" for a browser
    user_id: int

    class Meta:
        # A person's pages of sessions read in index order, whatever their history holds.
        indexes = ((("user", "last_active_at"), False), (("user", "ended_at"), False))


class RefreshToken(BaseModel):
    """Every refresh token a session has had, by hash, so that any older one is recognised."""

    id = peewee.AutoField()
    token_hash = peewee.CharField(max_length=64, unique=True)
    session = peewee.ForeignKeyField(LoginSession, backref="tokens", on_delete="CASCADE",
                                     index=True)
    generation = peewee.IntegerField()
    issued_at = peewee.DoubleField()


class SecurityEvent(BaseModel):
    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, null=True, backref="events", on_delete="CASCADE")
    session = peewee.ForeignKeyField(LoginSession, null=True, on_delete="SET NULL")
    kind = peewee.CharField(max_length=32)
    detail = peewee.CharField(max_length=255, default="")
    ip_address = peewee.CharField(max_length=64, default="")
    device_hash = peewee.CharField(max_length=64, default="")  # the browser the request came from
    created_at = peewee.DoubleField(default=time.time, index=True)

    class Meta:
        # A person's activity, newest first; a session's timeline, oldest first.
        indexes = ((("user", "created_at"), False), (("session", "created_at"), False))


class SessionChange(BaseModel):
    """One change to what a session's liveness is decided on (it ended, rotated, was re-keyed,
    or its person's credentials or address changed), written in the transaction that made it:
    ``session_id`` or, for all of a person's sessions, ``user_id``. Workers that remember
    liveness read these (SQLite) or are told their ids (PostgreSQL, NOTIFY); see
    ``session_changes``. Plain integers, no foreign keys: a row outlives a deleted session."""

    id = peewee.AutoField()
    session_id = peewee.IntegerField(null=True)
    user_id = peewee.IntegerField(null=True)
    created_at = peewee.DoubleField()
