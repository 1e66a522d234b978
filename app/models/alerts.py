"""New-sign-in alerts beyond the hour's budget, gathered into one summary mail."""

from __future__ import annotations

import peewee

from app.models.accounts import User
from app.models.base import BaseModel
from app.models.sessions import LoginSession


class DigestedSignIn(BaseModel):
    """A sign-in that was not announced by a mail of its own (the account had had its alerts
    for the hour): it is listed, with its own "This wasn't me" link, in the summary that the
    outbox row ``message_id`` sends when the hour ends (``window_end``)."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    session = peewee.ForeignKeyField(LoginSession, on_delete="CASCADE")
    window_end = peewee.DoubleField()
    message_id = peewee.IntegerField()
    session_id: int  # the foreign key's raw value, which peewee adds (annotated for mypy)

    class Meta:
        indexes = ((("user", "window_end"), False),)
