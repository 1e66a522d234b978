"""Apps: an authorization code carries the consenting session and its last proof."""

from __future__ import annotations

from app.db import database


def consent_proofs() -> None:
    """Each code names the browser session that consented, when that session last proved
    who its person is, and its credential epoch: the app's session starts with that proof,
    and the code works only while that session is live and the epoch has not moved on. A
    code issued before (a minute's worth at most) names no session and is refused."""
    database.execute_sql("ALTER TABLE authorization_code ADD COLUMN consent_session_id INTEGER")
    database.execute_sql("ALTER TABLE authorization_code ADD COLUMN proven_at DOUBLE PRECISION "
                         "NOT NULL DEFAULT 0")
    database.execute_sql("ALTER TABLE authorization_code ADD COLUMN credential_epoch INTEGER "
                         "NOT NULL DEFAULT 0")
