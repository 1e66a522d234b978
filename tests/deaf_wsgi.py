"""TEST-ONLY WSGI entry point: the real app, whose workers take in each change a revocation
waits for without applying or confirming it (a worker broken in that one place: its memory
keeps the revoked session, and nothing it checks on its own shows a change missing).

Started only by tests (``gunicorn --pythonpath tests deaf_wsgi:app``); production serves
``wsgi:app``.
"""

from __future__ import annotations

from app import session_changes
from wsgi import app  # noqa: F401  (gunicorn serves it)

_receive = session_changes.PostgresFollower.receive


def _deaf_to_revocations(self, payload: str) -> tuple[int, int]:
    change_id, _, _, waiting = session_changes._parse(payload)
    if not waiting:
        return _receive(self, payload)
    self.last = max(self.last, change_id)  # counted as received: never applied, never confirmed
    return change_id, 0


session_changes.PostgresFollower.receive = _deaf_to_revocations  # type: ignore[method-assign]
