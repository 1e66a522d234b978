"""Security events: a row per event for the person's own history, and one structured log line.

Nothing secret is ever passed here: ids, kinds, reasons and addresses only.
"""

from __future__ import annotations

import json
import logging

from app.models import SecurityEvent

log = logging.getLogger("gatehouse.security")


def record(kind: str, *, user: int | None, now: float, session: int | None = None,
           ip: str = "", detail: str = "") -> None:
    SecurityEvent.create(kind=kind, user=user, session=session, ip_address=ip[:64],
                         detail=detail[:255], created_at=now)
    log.info(json.dumps({"event": kind, "user": user, "session": session, "ip": ip,
                         "detail": detail}, sort_keys=True))


def recent(user_id: int, *, limit: int = 20) -> list[SecurityEvent]:
    return list(SecurityEvent.select().where(SecurityEvent.user == user_id)
                .order_by(SecurityEvent.created_at.desc(), SecurityEvent.id.desc()).limit(limit))
