"""peewee models only. Times are UNIX seconds (floats): one representation on both engines."""

from __future__ import annotations

import time

import peewee

from app.db import database


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class User(BaseModel):
    id = peewee.AutoField()
    public_id = peewee.CharField(max_length=32, unique=True)  # the JWT `sub`; never the email
    email = peewee.CharField(max_length=254, unique=True)
    password_hash = peewee.CharField(max_length=255)
    created_at = peewee.DoubleField(default=time.time)
    password_changed_at = peewee.DoubleField(default=time.time)
    # Moved on by every credential change (a new password, "sign out all other sessions"),
    # with why: a session that recorded an older epoch is not live.
    credential_epoch = peewee.IntegerField(default=0)
    credential_reason = peewee.CharField(max_length=32, default="")


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
    ip_address = peewee.CharField(max_length=64, default="")
    last_user_agent = peewee.CharField(max_length=512, default="")  # at the latest request
    last_ip_address = peewee.CharField(max_length=64, default="")
    ended_at = peewee.DoubleField(null=True, index=True)
    end_reason = peewee.CharField(max_length=32, null=True)
    end_ip_address = peewee.CharField(max_length=64, default="")  # who ended it, or the copy


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
    created_at = peewee.DoubleField(default=time.time, index=True)


class Throttle(BaseModel):
    """Failure counts per key ("account:<email>", "ip:<addr>") in a fixed window."""

    key = peewee.CharField(max_length=300, primary_key=True)
    window_start = peewee.DoubleField()
    failures = peewee.IntegerField(default=0)


class SchemaVersion(BaseModel):
    """One row per migration applied (``app.migrations``): the highest is the schema's version."""

    version = peewee.IntegerField(primary_key=True)
    applied_at = peewee.DoubleField()


ALL = [User, LoginSession, RefreshToken, SecurityEvent, Throttle, SchemaVersion]
