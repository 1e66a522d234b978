"""People, the browsers they sign in from, and the counts that throttle attempts."""

from __future__ import annotations

import time

import peewee

from app.models.base import BaseModel


class User(BaseModel):
    id = peewee.AutoField()
    public_id = peewee.CharField(max_length=32, unique=True)  # the JWT `sub`; never the email
    email = peewee.CharField(max_length=254, unique=True)
    password_hash = peewee.CharField(max_length=255)
    created_at = peewee.DoubleField(default=time.time)
    password_changed_at = peewee.DoubleField(default=time.time)
    # When the address was proven by a link; None until then (and for every account created
    # while GATEHOUSE_EMAIL_VERIFICATION was off, which never asks).
    email_verified_at = peewee.DoubleField(null=True)
    # Moved on by every credential change (a new password, "sign out all other sessions"),
    # with why: a session that recorded an older epoch is not live.
    credential_epoch = peewee.IntegerField(default=0)
    credential_reason = peewee.CharField(max_length=32, default="")
    # When its owner said a sign-in was not theirs: the password that let it in works no more
    # until a reset sets a new one (None: the password works).
    password_blocked_at = peewee.DoubleField(null=True)
    # Locked by an administrator (``flask users lock``): no sign-in until unlocked.
    locked_at = peewee.DoubleField(null=True)
    locked_reason = peewee.CharField(max_length=255, default="")


class KnownDevice(BaseModel):
    """A browser (its ``__Host-device`` cookie, by hash) that has signed in to an account:
    judged by its own failures there, not by the account's lockout. ``name`` is the one the
    person gave it (at most ``devices.NAME_MAX`` characters), ``label`` the browser and system
    parsed at its latest sign-in."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, backref="devices", on_delete="CASCADE")
    device_hash = peewee.CharField(max_length=64)
    name = peewee.CharField(max_length=40, default="")
    label = peewee.CharField(max_length=128, default="")
    first_seen_at = peewee.DoubleField()
    last_seen_at = peewee.DoubleField()

    class Meta:
        indexes = ((("user", "device_hash"), True),)


class Throttle(BaseModel):
    """Counts per key ("account:<email>", "ip:<addr>") in a fixed window: the failures (or
    requests) counted, and the password checks admitted and still in flight (since when)."""

    key = peewee.CharField(max_length=300, primary_key=True)
    window_start = peewee.DoubleField()
    failures = peewee.IntegerField(default=0)
    in_flight = peewee.IntegerField(default=0)
    in_flight_at = peewee.DoubleField(default=0)


class AnonymousFailure(BaseModel):
    """Refused requests nobody signed in made (a form without its token, a guessed session
    value, a throttled attempt), counted per address, kind and hour instead of a row each."""

    id = peewee.AutoField()
    window_start = peewee.DoubleField()
    ip_address = peewee.CharField(max_length=64)
    kind = peewee.CharField(max_length=32)
    count = peewee.IntegerField(default=1)
    last_detail = peewee.CharField(max_length=255, default="")

    class Meta:
        indexes = ((("window_start", "ip_address", "kind"), True),)
