"""Migrations for what protects a person whose password or address someone else has."""

from __future__ import annotations

from app.db import database


def password_blocks() -> None:
    """A password its owner disowned ("This wasn't me") stops working until a reset; the
    column is NULL, a working password, for every existing account."""
    database.execute_sql('ALTER TABLE "user" ADD COLUMN password_blocked_at DOUBLE PRECISION')
