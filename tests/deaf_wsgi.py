"""TEST-ONLY WSGI entry point: the real app, whose workers take in each change a revocation
waits for without applying or confirming it (``support.deaf_to_revocations``).

Started only by tests (``gunicorn --pythonpath tests deaf_wsgi:app``); production serves
``wsgi:app``.
"""

from __future__ import annotations

from support import deaf_to_revocations

from app.liveness.listener import PostgresFollower
from wsgi import app  # noqa: F401  (gunicorn serves it)

PostgresFollower.receive = deaf_to_revocations  # type: ignore[method-assign]
