"""The throttles' own schema changes."""

from __future__ import annotations

from app.db import database


def in_flight() -> None:
    """Version 9: password checks admitted and not yet landed, per key, and when the latest
    was admitted: only failures stay counted, and attempts wait for those in flight instead of
    being refused. Existing counts stay as they are."""
    for column, kind in (("in_flight", "INTEGER NOT NULL DEFAULT 0"),
                         ("in_flight_at", "DOUBLE PRECISION NOT NULL DEFAULT 0")):
        database.execute_sql(f"ALTER TABLE throttle ADD COLUMN {column} {kind}")
