"""Schema versions: numbered migrations, applied at start, recorded in ``schema_version``.

Every change to ``app.models`` ships as the next function in ``MIGRATIONS``, written in the
module of its part (``browser`` holds versions 1-7, ``throttle`` the throttles' own), with
``playhouse.migrate`` for columns or plain ``create_tables`` for new tables. A version, once
released, never changes, so that every database reaches the same schema by the same steps.
``tests/test_migrations.py`` fails when the models and the migrated schema disagree.

All of it runs in one transaction under the schema lock (``db.schema_lock``): several workers
and instances may start at once, and only one of them upgrades; the others wait for it, for as
long as it takes, then find the newest version recorded and do nothing. No request timeout
applies to the upgrade: a migration may rewrite a table of millions of sessions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import peewee

from app.db import database, engine
from app.migrations import (
    app_codes,
    apps,
    browser,
    devicekeys,
    operations,
    people,
    second_factors,
    throttle,
)
from app.models import SchemaVersion

# Version n is MIGRATIONS[n - 1]. Append; never edit or reorder a released one.
MIGRATIONS: list[Callable[[], None]] = [
    browser.initial, browser.bounded_costs, browser.mail, browser.rotation_protocol,
    browser.devices, browser.session_changes, browser.bound_keys, devicekeys.device_keys,
    throttle.in_flight, people.password_blocks, people.alert_digests,
    second_factors.second_factors, apps.signing_keys, apps.clients, operations.account_locks,
    app_codes.consent_proofs,
]
LATEST = len(MIGRATIONS)


def upgrade(now: float | None = None, to: int | None = None) -> int:
    """Apply every migration the database has not had, in order, up to version ``to`` (the
    newest unless a test builds an older schema); return its version now.

    Each is recorded with its number and when it was applied, in the same transaction as the
    change itself, so a failed upgrade leaves the database at the version it had. The schema
    lock lifts the request timeouts for the upgrade, and other processes wait for it as long
    as it takes.
    """
    to = LATEST if to is None else to
    with engine().schema_lock():
        database.create_tables([SchemaVersion], safe=True)
        current = SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar() or 0
        for version in range(current + 1, to + 1):
            MIGRATIONS[version - 1]()
            SchemaVersion.create(version=version, applied_at=now or time.time())
    return max(current, to)
