"""Schema versions: numbered migrations, applied at start, recorded in ``schema_version``.

Every change to ``app.models`` ships as the next function in ``MIGRATIONS``, written in the
module of its part (``browser`` holds versions 1-7), with ``playhouse.migrate`` for columns or
plain ``create_tables`` for new tables. A version, once released, never changes, so that
every database reaches the same schema by the same steps.
``tests/test_migrations.py`` fails when the models and the migrated schema disagree.

All of it runs in one transaction under the schema lock (``db.schema_lock``): several workers
and instances may start at once, and only one of them upgrades; the others then find the
newest version recorded and do nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import peewee

from app.db import database, engine
from app.migrations import browser, operations
from app.models import SchemaVersion

# Version n is MIGRATIONS[n - 1]. Append; never edit or reorder a released one.
MIGRATIONS: list[Callable[[], None]] = [
    browser.initial, browser.bounded_costs, browser.mail, browser.rotation_protocol,
    browser.devices, browser.session_changes, browser.bound_keys,
    operations.account_locks,
]
LATEST = len(MIGRATIONS)


def upgrade(now: float | None = None) -> int:
    """Apply every migration the database has not had, in order; return its version now.

    Each is recorded with its number and when it was applied, in the same transaction as the
    change itself, so a failed upgrade leaves the database at the version it had.
    """
    with engine().schema_lock():
        database.create_tables([SchemaVersion], safe=True)
        current = SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar() or 0
        for version in range(current + 1, LATEST + 1):
            MIGRATIONS[version - 1]()
            SchemaVersion.create(version=version, applied_at=now or time.time())
    return max(current, LATEST)
