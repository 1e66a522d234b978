"""Operations: an account an administrator locked (``flask users lock``)."""

from __future__ import annotations

from app.db import database


def account_locks() -> None:
    """An account may be locked by an administrator, with when and why; none is."""
    database.execute_sql('ALTER TABLE "user" ADD COLUMN locked_at DOUBLE PRECISION')
    database.execute_sql('ALTER TABLE "user" ADD COLUMN locked_reason VARCHAR(255) '
                         "NOT NULL DEFAULT ''")
