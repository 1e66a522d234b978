"""TEST-ONLY WSGI entry point: the real app, whose first rotation stops inside its transaction.

Its rotations take the locked path (the common one is a single statement on PostgreSQL, which
has no inside to stop in): the rotation's writes are made (successor token inserted, session
row updated, row lock held) but not committed; the worker writes its pid to
``GATEHOUSE_TEST_PAUSE_FILE`` and sleeps, so a test can SIGKILL it at exactly that point. It
lives in tests/ and is started only by tests (``gunicorn --pythonpath tests paused_wsgi:app``);
production serves ``wsgi:app``, which has no such hook and cannot be made to pause."""

from __future__ import annotations

import os
import time

from app.db import engine
from app.sessions import use
from wsgi import app  # noqa: F401  (gunicorn serves it)

PAUSE_FILE = os.environ["GATEHOUSE_TEST_PAUSE_FILE"]
PAUSE_LIMIT = 60  # seconds; the test kills the worker long before

_advance = use.advance


def _advance_then_pause(*args, **kwargs) -> None:
    _advance(*args, **kwargs)
    try:
        # Only the first rotation of the whole server pauses; later ones must go through.
        fd = os.open(PAUSE_FILE + ".claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    with open(PAUSE_FILE + ".tmp", "w") as out:
        out.write(str(os.getpid()))
    os.replace(PAUSE_FILE + ".tmp", PAUSE_FILE)  # the test sees the pid whole or not at all
    time.sleep(PAUSE_LIMIT)


use.advance = _advance_then_pause
engine().swap = lambda *args: False  # type: ignore[method-assign]
