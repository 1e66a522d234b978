"""Security events: a row per event for the person's own history, and one structured log line.

Each rotation is a log line only: a row every few minutes per browser would bloat the table
without telling the person anything (the session's ``generation`` counts them).

Nothing secret is ever passed here: ids, kinds, reasons and addresses only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from app.models import SecurityEvent

log = logging.getLogger("gatehouse.security")

# kind -> functions called with the event, inside the transaction that records it (so a mail
# they queue commits, or not, with the event). Registered once per process; idempotent.
_listeners: dict[str, list[Callable[..., None]]] = {}


def on(kind: str, listener: Callable[..., None]) -> None:
    if listener not in _listeners.setdefault(kind, []):
        _listeners[kind].append(listener)


def record(kind: str, *, user: int | None, now: float, session: int | None = None,
           ip: str = "", detail: str = "") -> None:
    SecurityEvent.create(kind=kind, user=user, session=session, ip_address=ip[:64],
                         detail=detail[:255], created_at=now)
    note(kind, user=user, now=now, session=session, ip=ip, detail=detail)
    for listener in _listeners.get(kind, ()):
        listener(user=user, session=session, ip=ip, now=now)


def note(kind: str, *, now: float, **fields: Any) -> None:
    """The structured log line alone, for events too frequent for a row (each rotation).

    JSON, so a CR/LF in any value stays inside one escaped string (no forged log lines).
    """
    at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    log.info(json.dumps({"event": kind, "at": at, **fields}, sort_keys=True, default=str))


def recent(user_id: int, *, limit: int = 20) -> list[SecurityEvent]:
    return list(SecurityEvent.select().where(SecurityEvent.user == user_id)
                .order_by(SecurityEvent.created_at.desc(), SecurityEvent.id.desc()).limit(limit))
