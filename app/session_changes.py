"""What each worker remembers of its sessions' liveness, and how it hears that it changed.

Every change to what ``session_rules.liveness_failure`` decides on (a session ended, rotated or
re-keyed, its person's credentials or address changed) is written to ``session_change`` in the
transaction that makes it (``announce``). A worker keeps the facts of the sessions it served
(``Memory``, a bounded LRU of ``LiveRow``) and, before a request trusts them, applies every
change committed since (``Follower.fresh``):

* SQLite (one machine): ``PRAGMA data_version`` on a connection of its own, which changes
  whenever another connection has committed; only then is the log read past the last id seen.
  A revocation has committed before its response is sent, so the next request, whichever
  process serves it, sees it: exact.
* PostgreSQL: the same statement that logs a change sends ``NOTIFY`` with its id; every worker
  listens on a connection of its own. Delivery is asynchronous: at commit, before the commit
  is acknowledged, PostgreSQL signals each listening server process, which sends the
  notification when it next runs. A non-blocking poll alone missed changes committed by
  another instance just before (4 of 1,000 trials in ``tests/test_remembered_liveness.py``):
  that process had not run yet. So each request makes one round trip on the listening
  connection, a prepared ``SELECT max(id) FROM session_change``: the signal was pending
  before the query was sent, and the server process handles it (sending the notifications)
  before it reads the query, so every change committed before the request is in hand with the
  answer, in commit order. The answer also shows a lost notification: a committed id newer
  than any received. That round trip (about 35 µs here, half what planning it each time cost)
  is a fraction of the liveness query and its pooled connection.

What is remembered only ever lets a request through; every refusal is decided again on the
stored row (``session_store.touch_live``), so remembered facts that lag (an older "last
active") can never end a session. The memory is dropped, and every request asks the database,
whenever a change may have been missed: the listening connection lost (it listens again at
most once per ``RETRY`` seconds), a gap in the ids, or the log's newest id ahead of what
arrived.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import peewee
import psycopg2  # type: ignore[import-untyped]
from flask import Flask, current_app

from app.db import database, execute, fetch_one, is_postgres
from app.session_rules import LiveRow

CHANNEL = "gatehouse_session_changes"
RETRY = 1.0  # seconds between attempts to listen again after the connection was lost
LISTENER_NAME = "gatehouse-listener"  # its application_name in pg_stat_activity


class Memory:
    """The liveness facts of at most ``size`` sessions, the least recently used forgotten
    first, by public id; each forget moves ``version`` on, so that a row read from the
    database before it is not remembered after it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rows: OrderedDict[str, LiveRow] = OrderedDict()
        self.public_ids: dict[int, str] = {}
        self.by_user: dict[int, set[str]] = {}
        self.version = 0
        self.lock = threading.Lock()

    def get(self, public_id: str) -> LiveRow | None:
        with self.lock:
            row = self.rows.get(public_id)
            if row is not None:
                self.rows.move_to_end(public_id)
            return row

    def put(self, row: LiveRow, version: int, changes: dict[str, object] | None = None) -> None:
        """Remember ``row`` (with the ``changes`` just written to it), unless something was
        forgotten since ``version`` was read."""
        if changes:
            row = replace(row, **changes)  # type: ignore[arg-type]  # LiveRow's own fields
        # Most sessions share a handful of browsers: one copy of each User-Agent.
        row = replace(row, last_user_agent=sys.intern(row.last_user_agent))
        with self.lock:
            if version != self.version:
                return
            principal = row.principal
            self.rows[principal.session_public_id] = row
            self.rows.move_to_end(principal.session_public_id)
            self.public_ids[principal.session_id] = principal.session_public_id
            self.by_user.setdefault(principal.user_id, set()).add(principal.session_public_id)
            while len(self.rows) > self.size:
                self._drop(self.rows.popitem(last=False)[1])

    def _drop(self, row: LiveRow) -> None:
        principal = row.principal
        self.public_ids.pop(principal.session_id, None)
        sessions = self.by_user.get(principal.user_id)
        if sessions is not None:
            sessions.discard(principal.session_public_id)
            if not sessions:
                del self.by_user[principal.user_id]

    def forget(self, session_id: int | None, user_id: int | None) -> None:
        with self.lock:
            self.version += 1
            public_ids = set(self.by_user.get(user_id, ())) if user_id is not None else set()
            if session_id is not None and session_id in self.public_ids:
                public_ids.add(self.public_ids[session_id])
            for public_id in public_ids:
                row = self.rows.pop(public_id, None)
                if row is not None:
                    self._drop(row)

    def clear(self) -> None:
        with self.lock:
            self.version += 1
            self.rows.clear()
            self.public_ids.clear()
            self.by_user.clear()


class Follower:
    """Brings a Memory up to date with the log; ``fresh`` is False while it cannot."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last = 0  # the newest change id applied

    def fresh(self, memory: Memory) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def apply(self, memory: Memory, change_id: int, session_id: int | None,
              user_id: int | None) -> None:
        if change_id > self.last + 1:  # one or more in between never arrived (yet)
            memory.clear()
        memory.forget(session_id, user_id)
        self.last = max(self.last, change_id)

    def restarted(self, memory: Memory, newest: int) -> None:
        """The log's newest id is behind the last one applied: it was emptied (a database
        restored, or a test's), and ids count again from where it now is."""
        if newest < self.last:
            memory.clear()
            self.last = newest


_LOG_SQL = "SELECT id, session_id, user_id FROM session_change WHERE id > ? ORDER BY id"
_NEWEST_SQL = "SELECT coalesce(max(id), 0) FROM session_change"
_NEWEST_NAME = "gatehouse_newest_change"
_EXECUTE_NEWEST = f"EXECUTE {_NEWEST_NAME}"


class SqliteFollower(Follower):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.connection: sqlite3.Connection | None = None
        self.data_version = -1

    def fresh(self, memory: Memory) -> bool:
        with self.lock:
            try:
                if self.connection is None:
                    self._open(memory)
                    assert self.connection is not None
                version = self.connection.execute("PRAGMA data_version").fetchone()[0]
                if version != self.data_version:
                    # Taken before the log is read: a commit meanwhile shows as another change.
                    self.data_version = version
                    for row in self.connection.execute(_LOG_SQL, (self.last,)).fetchall():
                        self.apply(memory, *row)
                    self.restarted(memory, self.connection.execute(_NEWEST_SQL).fetchone()[0])
                return True
            except sqlite3.Error:
                memory.clear()
                self.close()
                return False

    def _open(self, memory: Memory) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout = 10000")
        self.data_version = connection.execute("PRAGMA data_version").fetchone()[0]
        self.last = connection.execute(_NEWEST_SQL).fetchone()[0]
        self.connection = connection
        memory.clear()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None


class PostgresFollower(Follower):
    def __init__(self, connect: dict[str, Any]) -> None:
        super().__init__()
        self.connect = connect
        self.connection: Any = None
        self.cursor: Any = None
        self.retry_at = 0.0

    def fresh(self, memory: Memory) -> bool:
        with self.lock:
            try:
                if self.connection is None and not self._listen(memory):
                    return False
                self.cursor.execute(_EXECUTE_NEWEST)
                newest = self.cursor.fetchone()[0]
                self._drain(memory)
                if newest > self.last:  # committed before this query, yet never notified
                    memory.clear()
                    self.last = newest
                self.restarted(memory, newest)
                return True
            except psycopg2.Error:
                memory.clear()
                self.close()
                return False

    def _listen(self, memory: Memory) -> bool:
        if time.monotonic() < self.retry_at:
            return False
        self.retry_at = time.monotonic() + RETRY
        try:
            connection = psycopg2.connect(**self.connect, application_name=LISTENER_NAME)
            connection.autocommit = True
            cursor = connection.cursor()
            cursor.execute(f"LISTEN {CHANNEL}")
            # Prepared once: executing it costs half the round trip that planning it anew does.
            cursor.execute(f"PREPARE {_NEWEST_NAME} AS {_NEWEST_SQL}")
            # After LISTEN: every later change is notified, every earlier one is read.
            cursor.execute(_EXECUTE_NEWEST)
            self.last = cursor.fetchone()[0]
        except psycopg2.Error:
            return False
        self.connection, self.cursor = connection, cursor
        memory.clear()
        return True

    def _drain(self, memory: Memory) -> None:
        notifies = self.connection.notifies
        while notifies:
            payload = notifies.pop(0).payload
            change_id, kind, number = _parse(payload)
            self.apply(memory, change_id, number if kind == "s" else None,
                       number if kind == "u" else None)

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # noqa: BLE001 - a broken socket closes all the same
                pass
        self.connection = self.cursor = None


def _parse(payload: str) -> tuple[int, str, int]:
    change_id, target = payload.split(" ", 1)
    return int(change_id), target[0], int(target[1:])


# --- announcing, in the transaction that makes the change -------------------------------------

_INSERT_SQL = "INSERT INTO session_change (session_id, user_id, created_at) VALUES ({p}, {p}, {p})"
_NOTIFY_SQL = (
    "WITH c AS (INSERT INTO session_change (session_id, user_id, created_at) "
    "VALUES ({p}, {p}, {p}) RETURNING id) "
    f"SELECT id, pg_notify('{CHANNEL}', id || ' ' || {{p}}) FROM c"
)


# The same, for one session, at the end of a statement whose CTE ``s`` returned its id.
LOG_SESSION_PG = (
    "c AS (INSERT INTO session_change (session_id, user_id, created_at) "
    "SELECT id, NULL, {p} FROM s RETURNING id, session_id) "
    f"SELECT id, pg_notify('{CHANNEL}', id || ' s' || session_id) FROM c"
)


def announce(*, session_id: int | None = None, user_id: int | None = None,
             now: float) -> None:
    """Record, in the caller's transaction, that one session (``session_id``) or every session
    of a person (``user_id``) changed in a way the liveness check must not miss."""
    if not is_postgres():
        execute(_INSERT_SQL, session_id, user_id, now)
        return
    target = f"s{session_id}" if session_id is not None else f"u{user_id}"
    fetch_one(_NOTIFY_SQL, session_id, user_id, now, target)


def prune(*, now: float, keep_for: int = 3600) -> int:
    """Delete log rows older than ``keep_for`` seconds, never the newest (its id is where the
    next one counts from). A worker that had not looked since finds a gap and forgets all."""
    newest = fetch_one("SELECT max(id) FROM session_change")
    if newest is None or newest[0] is None:
        return 0
    cursor = execute("DELETE FROM session_change WHERE created_at < {p} AND id < {p}",
                     now - keep_for, newest[0])
    return int(cursor.rowcount)


# --- per worker ---------------------------------------------------------------------------------


_inherited: list[Follower | None] = []


class _Worker:
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


def _follower() -> Follower:
    db = database.obj
    if isinstance(db, peewee.PostgresqlDatabase):
        return PostgresFollower({"dbname": db.database,
                                 **{**db.connect_params, "connect_timeout": 1}})
    return SqliteFollower(db.database)


def _worker() -> _Worker:
    worker: _Worker = current_app.extensions["gatehouse_session_memory"]
    return worker


def trusted_memory() -> Memory | None:
    """This worker's memory, brought up to date, or None when it may have missed a change
    (every request then asks the database)."""
    worker = _worker()
    if worker.memory.size <= 0:
        return None
    if worker.follower is None:
        worker.follower = _follower()
    return worker.memory if worker.follower.fresh(worker.memory) else None


def close(app: Flask) -> None:
    """Let go of ``app``'s listening connection (an app discarded before its process ends, as
    the test suite's are: each would otherwise keep a PostgreSQL connection open)."""
    worker: _Worker = app.extensions["gatehouse_session_memory"]
    worker.memory.clear()
    if worker.follower is not None:
        worker.follower.close()
        worker.follower = None


def init_app(app: Flask) -> None:
    worker = _Worker(app.config["GATEHOUSE_REMEMBERED_SESSIONS"])
    app.extensions["gatehouse_session_memory"] = worker
    os.register_at_fork(after_in_child=worker.reset)
