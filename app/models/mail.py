"""Mail waiting to be sent, and the single-use tokens its links carry."""

from __future__ import annotations

import peewee

from app.models.accounts import User
from app.models.base import BaseModel
from app.models.sessions import LoginSession


class OutboxMessage(BaseModel):
    """A mail written in the transaction of the change that caused it, sent after the commit.

    A sender claims a row by setting ``claimed_until`` (a lease) and ``claim`` in one
    conditional UPDATE, so two senders never both have it; a sender that dies mid-way loses the
    lease and the row is sent by another. ``sent_at`` is set once, by the claim's holder.
    """

    id = peewee.AutoField()
    recipient = peewee.CharField(max_length=254)
    subject = peewee.CharField(max_length=255)
    text_body = peewee.TextField()
    html_body = peewee.TextField()
    created_at = peewee.DoubleField()
    next_attempt_at = peewee.DoubleField(index=True)
    attempts = peewee.IntegerField(default=0)
    claim = peewee.CharField(max_length=32, null=True)
    claimed_until = peewee.DoubleField(null=True)
    sent_at = peewee.DoubleField(null=True, index=True)
    failed_at = peewee.DoubleField(null=True)  # gave up after the last retry
    last_error = peewee.CharField(max_length=255, default="")


class LinkToken(BaseModel):
    """A single-use token carried by a link in a mail; only its hash is stored."""

    id = peewee.AutoField()
    token_hash = peewee.CharField(max_length=64, unique=True)
    purpose = peewee.CharField(max_length=16)  # verify, reset, not_me, new_email
    user = peewee.ForeignKeyField(User, backref="links", on_delete="CASCADE", index=True)
    email = peewee.CharField(max_length=254, default="")  # the address being verified
    session = peewee.ForeignKeyField(LoginSession, null=True, on_delete="CASCADE")
    created_at = peewee.DoubleField()
    expires_at = peewee.DoubleField()
    used_at = peewee.DoubleField(null=True)
    user_id: int  # the foreign keys' raw values, which peewee adds (annotated for mypy)
    session_id: int | None
