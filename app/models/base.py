"""The base of every model, and the schema's version."""

from __future__ import annotations

import peewee

from app.db import database


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaVersion(BaseModel):
    """One row per migration applied (``app.migrations``): the highest is the schema's version."""

    version = peewee.IntegerField(primary_key=True)
    applied_at = peewee.DoubleField()
