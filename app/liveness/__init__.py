"""What each worker remembers of its sessions' liveness, and how it hears that it changed.

Every change to what ``sessions.rules.liveness_failure`` decides on (a session ended, rotated
or re-keyed, its person's credentials or address changed) is logged to ``session_change`` in
the transaction that makes it (``announce``, called by the session store alone). A worker
keeps the states of the sessions it served (``Memory``) and, before a request trusts them,
applies every change committed since, the way its engine follows the log
(``follower.SqliteFollower``; on PostgreSQL ``listener`` and ``confirm``).

What is remembered only ever lets a request through; every refusal is decided again on the
stored row (``sessions.store.check_live``), so remembered facts that lag (an older "last
active") can never end a session.
"""

from __future__ import annotations

import os

from flask import Flask, current_app

from app import settings
from app.db import engine, execute, fetch_one
from app.liveness.confirm import RevocationUnconfirmed
from app.liveness.follower import Follower
from app.liveness.memory import Memory

__all__ = ["Memory", "RevocationUnconfirmed", "announce", "close", "init_app", "prune",
           "trusted_memory"]


def announce(*, session_id: int | None = None, user_id: int | None = None, now: float,
             confirmed: bool = True) -> None:
    """Log, in the caller's transaction, that one session (``session_id``) or every session of
    a person (``user_id``) changed in a way the liveness check must not miss.

    ``confirmed``: on PostgreSQL, once the transaction commits, wait until every listening
    worker has applied it, so the response that follows a revocation reaches nobody before
    the revocation does. A rotation is not waited for: until a worker applies it, it accepts
    only what it would within the grace window anyway."""
    engine().log_change(session_id, user_id, now, confirmed=confirmed)


def prune(*, now: float, keep_for: int = 3600) -> int:
    """Delete log rows older than ``keep_for`` seconds, never the newest (its id is where the
    next one counts from). A worker that had not looked since finds a gap and forgets all."""
    newest = fetch_one("SELECT max(id) FROM session_change")
    if newest is None or newest[0] is None:
        return 0
    cursor = execute("DELETE FROM session_change WHERE created_at < {p} AND id < {p}",
                     now - keep_for, newest[0])
    return int(cursor.rowcount)


_inherited: list[Follower | None] = []


class Worker:
    """This process's memory and follower, made at its first request: gunicorn forks workers
    from one process, and none may share the other's listening connection."""

    def __init__(self, size: int) -> None:
        self.memory = Memory(size)
        self.follower: Follower | None = None

    def reset(self) -> None:
        self.memory.clear()
        # The parent's connection is kept, never used: freeing it would say goodbye to the
        # server on a socket the parent still listens on.
        _inherited.append(self.follower)
        self.follower = None


def worker(app: Flask | None = None) -> Worker:
    found: Worker = (app or current_app).extensions["gatehouse_liveness"]
    return found


def trusted_memory() -> Memory | None:
    """This worker's memory, brought up to date, or None when it may have missed a change
    (every request then asks the database)."""
    this = worker()
    if this.memory.size <= 0:
        return None
    if this.follower is None:
        this.follower = engine().follower()
    return this.memory if this.follower.fresh(this.memory) else None


def close(app: Flask) -> None:
    """Let go of ``app``'s listening connection (an app discarded before its process ends, as
    the test suite's are: each would otherwise keep a PostgreSQL connection open)."""
    this = worker(app)
    this.memory.clear()
    if this.follower is not None:
        this.follower.close()
        this.follower = None


def init_app(app: Flask) -> None:
    this = Worker(settings.of(app).remembered_sessions)
    app.extensions["gatehouse_liveness"] = this
    os.register_at_fork(after_in_child=this.reset)
