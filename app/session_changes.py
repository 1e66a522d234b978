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
  listens on a connection of its own, read by a thread of its own that applies each change as
  it arrives. Delivery is asynchronous: PostgreSQL signals each listening server process at
  commit, which sends the notification when it next runs, and a non-blocking poll alone
  missed changes committed by another instance just before (4 of 1,000 trials in
  ``tests/test_remembered_liveness.py``). So a revocation waits, after its commit and before
  its response, until every worker that was listening has confirmed applying it (a NOTIFY
  back on a channel of the revoking connection's); a worker that has not within ``ACK_WAIT``
  seconds has its listening connection ended, and the request that follows finds it closed.
  A request then runs no query at all: a non-blocking look at the listening socket, for what
  has arrived and for the connection ended under it; it never waits for the thread, and does
  not trust it while it is in a round trip or has not checked lately. Each listener also reads
  the log's newest id every ``CHECK_EVERY`` seconds, for a change lost or logged by other
  means.

What is remembered only ever lets a request through; every refusal is decided again on the
stored row (``session_store.touch_live``), so remembered facts that lag (an older "last
active") can never end a session. The memory is dropped, and every request asks the database,
whenever a change may have been missed: the listening connection lost or ended (it listens
again at most once per ``RETRY`` seconds), a gap in the ids (on PostgreSQL, one still open a
check later: notifications come in commit order, not id order), or the log's newest id ahead
of what arrived.
"""

from __future__ import annotations

import logging
import os
import select
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

from app.db import bind, database, execute, fetch_one, is_postgres
from app.session_rules import LiveRow

CHANNEL = "gatehouse_session_changes"
RETRY = 1.0  # seconds between attempts to listen again after the connection was lost
CHECK_EVERY = 1.0  # seconds between a listener's own looks at the newest change logged
ACK_WAIT = 2.0  # seconds a revocation waits for each listening worker to confirm it
STALE_AFTER = 2 * CHECK_EVERY + 1  # a listener not checked for this long is not trusted
MISSING_AT_MOST = 1000  # more ids skipped at once than this: forget everything at once
LISTENER_NAME = "gatehouse-listener"  # its application_name in pg_stat_activity, then its start

log = logging.getLogger("gatehouse.session_changes")


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
    """Listens on a connection of its own, read by a thread of its own, which applies each
    change as it arrives and confirms each one a revocation waits for (``announce``)."""

    def __init__(self, connect: dict[str, Any]) -> None:
        super().__init__()
        self.connect = connect
        self.memory: Memory | None = None
        self.connection: Any = None
        self.pid = 0  # the listening connection's server process
        self.thread: threading.Thread | None = None
        self.stopped = False
        self.retry_at = 0.0
        self.check_at = 0.0
        self.checked_at = 0.0  # when the thread last read the newest id (monotonic)
        # Ids below ``last`` not received yet (a transaction that took its id first may commit
        # second), and those of them that were missing at the previous check already.
        self.missing: set[int] = set()
        self.overdue: set[int] = set()

    def fresh(self, memory: Memory) -> bool:
        if self.thread is None:
            with self.lock:
                if self.thread is None:  # this worker's first request: listen now, then read on
                    self.memory = memory
                    self._listen()
                    self.thread = threading.Thread(target=self._run, daemon=True,
                                                   name="gatehouse-listener")
                    self.thread.start()
        # Never waits for the thread: while it holds the lock (applying what arrived, in a round
        # trip for its check or a confirmation, listening again), the database is asked
        # instead, and so it is when its last check is too old (the thread stalled, or its
        # connection silent).
        if not self.lock.acquire(blocking=False):
            return False
        try:
            if self.connection is None or time.monotonic() - self.checked_at > STALE_AFTER:
                return False
            # Whatever has arrived, the thread may not have applied yet (a revocation's is
            # confirmed from here then: one round trip); a connection ended under this worker
            # (a revocation it never confirmed) shows here too.
            if select.select([self.connection], [], [], 0)[0]:
                self._receive()
            return True
        except (psycopg2.Error, OSError, ValueError):
            self._lost()
            return False
        finally:
            self.lock.release()

    def _run(self) -> None:
        while not self.stopped:
            connection = self.connection
            if connection is None:
                time.sleep(max(self.retry_at - time.monotonic(), 0.05))
                with self.lock:
                    if not self.stopped and self.connection is None:
                        self._listen()
                continue
            try:
                readable = bool(select.select([connection], [], [], CHECK_EVERY)[0])
            except (psycopg2.Error, OSError, ValueError):
                readable = True  # closed meanwhile, here or by close(): polling tells which
            with self.lock:
                if self.stopped or self.connection is not connection:
                    continue
                try:
                    if readable:
                        self._receive()
                    if time.monotonic() >= self.check_at:
                        self._check()
                except (psycopg2.Error, OSError, ValueError):
                    self._lost()

    def _listen(self) -> None:
        assert self.memory is not None
        self.retry_at = time.monotonic() + RETRY
        connection = None
        try:
            connection = psycopg2.connect(**self.connect, application_name=LISTENER_NAME)
            connection.autocommit = True
            cursor = connection.cursor()
            cursor.execute(f"LISTEN {CHANNEL}")
            # Prepared once: executing it costs half the round trip that planning it anew does.
            cursor.execute(f"PREPARE {_NEWEST_NAME} AS {_NEWEST_SQL}")
            # After LISTEN: every later change is notified, every earlier one is read. The
            # oldest transaction still running then names the listener: one that commits a
            # revocation with a transaction id below it had finished before the memory was
            # emptied (below), so it need not wait for this worker.
            # The server's own process id (a pooler shows the client another), as
            # pg_stat_activity lists it.
            cursor.execute("SELECT coalesce(max(id), 0), pg_snapshot_xmin(pg_current_snapshot())"
                           "::text, pg_backend_pid() FROM session_change")
            last, xmin, pid = cursor.fetchone()
            cursor.execute("SELECT set_config('application_name', %s, false)",
                           (f"{LISTENER_NAME} {xmin}",))
        except psycopg2.Error:
            if connection is not None:
                connection.close()
            return
        self.connection, self.pid, self.last = connection, pid, last
        self.check_at = time.monotonic() + CHECK_EVERY
        self.checked_at = time.monotonic()
        self.missing.clear()
        self.overdue.clear()
        self.memory.clear()

    def _receive(self) -> None:
        self.connection.poll()  # raises once the server has closed the connection
        self._drain()

    def _drain(self) -> None:
        """Apply what arrived, then confirm what a revocation waits for."""
        notifies = self.connection.notifies
        while notifies:
            confirm: dict[int, int] = {}
            while notifies:
                change_id, ack = self.receive(notifies.pop(0).payload)
                if ack:
                    confirm[ack] = change_id
            for revoker, change_id in confirm.items():
                # Its own transaction: delivered at once. More may arrive meanwhile.
                self.connection.cursor().execute("SELECT pg_notify(%s, %s)",
                                                 (ack_channel(revoker), f"{change_id} {self.pid}"))

    def apply(self, memory: Memory, change_id: int, session_id: int | None,
              user_id: int | None) -> None:
        # Notifications come in commit order, not id order (a transaction that took its id
        # first may commit second): an id skipped is noted, and counts as lost only if it is
        # still missing a whole check later (``_check``).
        if change_id > self.last + MISSING_AT_MOST:
            memory.clear()
            self.missing.clear()
        elif change_id > self.last + 1:
            self.missing.update(range(self.last + 1, change_id))
        self.missing.discard(change_id)
        memory.forget(session_id, user_id)
        self.last = max(self.last, change_id)

    def receive(self, payload: str) -> tuple[int, int]:
        """Apply one notification; return its change id and who waits for it (0: nobody)."""
        assert self.memory is not None
        change_id, kind, number, ack = _parse(payload)
        self.apply(self.memory, change_id, number if kind == "s" else None,
                   number if kind == "u" else None)
        return change_id, ack

    def _check(self) -> None:
        """What no notification brought: one lost (an id newer than any received, or one
        skipped and still missing since the previous check), or a change logged by something
        other than ``announce``. Every CHECK_EVERY seconds; the notifications of every change
        committed before the query arrive before its answer."""
        assert self.memory is not None
        self.check_at = time.monotonic() + CHECK_EVERY
        before = self.last  # every change applied so far had committed before the query
        cursor = self.connection.cursor()
        cursor.execute(_EXECUTE_NEWEST)
        newest = cursor.fetchone()[0]
        self._drain()  # may apply changes committed after the query's snapshot, too
        if newest < before:  # the log was emptied (a database restored): ids count anew
            self.missing.clear()
            self.restarted(self.memory, newest)
        elif newest > self.last or self.missing & self.overdue:
            self.memory.clear()
            self.missing -= self.overdue
            self.last = max(self.last, newest)
        self.overdue = set(self.missing)
        self.checked_at = time.monotonic()

    def _lost(self) -> None:
        if self.memory is not None:
            self.memory.clear()
        self._disconnect()

    def _disconnect(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # noqa: BLE001 - a broken socket closes all the same
                pass
        self.connection = None

    def close(self) -> None:
        """Stop listening; the thread ends by itself within CHECK_EVERY seconds."""
        with self.lock:
            self.stopped = True
            self._disconnect()


def ack_channel(pid: int) -> str:
    """Where the workers confirm the changes of the connection of server process ``pid``."""
    return f"{CHANNEL}_ack_{pid}"


def _parse(payload: str) -> tuple[int, str, int, int]:
    """``"<change id> <s|u><id> [<pid waiting>]"``."""
    change_id, target, *ack = payload.split(" ")
    return int(change_id), target[0], int(target[1:]), int(ack[0]) if ack else 0


# --- announcing, in the transaction that makes the change -------------------------------------

_INSERT_SQL = "INSERT INTO session_change (session_id, user_id, created_at) VALUES ({p}, {p}, {p})"
_NOTIFY_SQL = (
    "WITH c AS (INSERT INTO session_change (session_id, user_id, created_at) "
    "VALUES ({p}, {p}, {p}) RETURNING id) "
    f"SELECT id, pg_current_xact_id()::text, pg_notify('{CHANNEL}', id || ' ' || {{p}}) FROM c"
)


# The same, for one session, at the end of a statement whose CTE ``s`` returned its id.
LOG_SESSION_PG = (
    "c AS (INSERT INTO session_change (session_id, user_id, created_at) "
    "SELECT id, NULL, CAST({p} AS DOUBLE PRECISION) FROM s RETURNING id, session_id) "
    f"SELECT id, pg_notify('{CHANNEL}', id || ' s' || session_id) FROM c"
)


def announce(*, session_id: int | None = None, user_id: int | None = None, now: float,
             confirmed: bool = True) -> None:
    """Record, in the caller's transaction, that one session (``session_id``) or every session
    of a person (``user_id``) changed in a way the liveness check must not miss.

    On PostgreSQL, once the transaction commits, this waits (``confirmed``) until every worker
    that was listening has applied it: the response that follows a revocation then reaches
    nobody before the revocation does. A rotation is not waited for: until a worker applies
    it, it accepts only what it would within the grace window anyway."""
    if not is_postgres():
        execute(_INSERT_SQL, session_id, user_id, now)
        return
    target = f"s{session_id}" if session_id is not None else f"u{user_id}"
    if not confirmed:
        fetch_one(_NOTIFY_SQL, session_id, user_id, now, target)
        return
    pid = database.connection().get_backend_pid()
    # LISTEN takes effect at commit, as the notification does: no confirmation is missed.
    cursor = database.execute_sql(f"LISTEN {ack_channel(pid)}; {bind(_NOTIFY_SQL, '%s')}",
                                  (session_id, user_id, now, f"{target} {pid}"))
    change_id, xid, _ = cursor.fetchone()
    _await_after_commit(change_id, int(xid))


class RevocationUnconfirmed(peewee.OperationalError):
    """A revocation was committed, but not every worker could be shown to have applied it nor
    be cut off: the response must not claim it holds everywhere (503, try again)."""


_waits = threading.local()


def _await_after_commit(change_id: int, xid: int) -> None:
    """Wait for ``change_id`` (and every change before it) once the caller's transaction
    (``xid``) commits, once per transaction however many changes it logged."""
    transaction = database.top_transaction()
    if transaction is not None and getattr(_waits, "transaction", None) is transaction:
        _waits.upto = max(_waits.upto, change_id)
        return
    _waits.transaction, _waits.upto, _waits.xid = transaction, change_id, xid
    database.after_commit(_await_confirmations)


_LISTENERS_SQL = ("SELECT pid, application_name FROM pg_stat_activity "
                  "WHERE datname = current_database() AND application_name LIKE %s")


def _await_confirmations() -> None:
    """Return once every worker that listened before the change committed has confirmed
    applying it. One that has not within ACK_WAIT seconds (stalled, or its notification lost)
    has its listening connection ended, and the server process gone, before this returns: it
    forgets everything on its next request, and listens anew."""
    change_id, xid, _waits.transaction = _waits.upto, _waits.xid, None
    connection = database.connection()
    channel = ack_channel(connection.get_backend_pid())
    try:
        unconfirmed = _confirmations(connection, change_id, xid)
        if unconfirmed:
            _cut_off(connection, unconfirmed, change_id)
    except psycopg2.Error as error:  # the connection failed after the commit
        log.warning("session change %s: confirmations lost with the connection (%s); ending "
                    "every listening connection", change_id, error)
        _cut_off_everyone(change_id)
    finally:
        try:
            connection.cursor().execute(f"UNLISTEN {channel}")
        except psycopg2.Error:
            pass  # a broken connection is discarded by the pool
        connection.notifies.clear()


def _confirmations(connection: Any, change_id: int, xid: int) -> set[int]:
    """Wait up to ACK_WAIT seconds; return the listeners that have not confirmed."""
    cursor = connection.cursor()
    cursor.execute(_LISTENERS_SQL, (f"{LISTENER_NAME}%",))
    waiting = {pid for pid, name in cursor.fetchall() if xid >= _listening_since(name)}
    deadline = time.monotonic() + ACK_WAIT
    while True:
        while connection.notifies:
            confirmed, pid = map(int, connection.notifies.pop(0).payload.split(" "))
            if confirmed >= change_id:
                waiting.discard(pid)
        remaining = deadline - time.monotonic()
        if not waiting or remaining <= 0:
            return waiting
        if select.select([connection], [], [], remaining)[0]:
            connection.poll()


def _cut_off(connection: Any, pids: set[int], change_id: int) -> None:
    """End these listeners' connections, waiting until each server process has exited."""
    log.warning("session change %s: no confirmation from %d listening worker(s) in %s s; "
                "ending their listening connections", change_id, len(pids), ACK_WAIT)
    cursor = connection.cursor()
    for pid in sorted(pids):
        # False when it has not exited within 5 s, or was gone already: which one, the
        # activity view tells.
        cursor.execute("SELECT pg_terminate_backend(%s, 5000) OR NOT EXISTS (SELECT FROM "
                       "pg_stat_activity WHERE pid = %s)", (pid, pid))
        if not cursor.fetchone()[0]:
            raise RevocationUnconfirmed(f"session change {change_id}: listening worker "
                                        f"{pid} neither confirmed it nor ended")


def _cut_off_everyone(change_id: int) -> None:
    """End every listener that may have needed to confirm, on a connection of its own."""
    try:
        connection = psycopg2.connect(**_connect_params())
    except psycopg2.Error as error:
        raise RevocationUnconfirmed(f"session change {change_id}: {error}") from error
    try:
        connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute(_LISTENERS_SQL, (f"{LISTENER_NAME}%",))
        _cut_off(connection, {pid for pid, _ in cursor.fetchall()}, change_id)
    except psycopg2.Error as error:
        raise RevocationUnconfirmed(f"session change {change_id}: {error}") from error
    finally:
        connection.close()


def _listening_since(application_name: str) -> int:
    """The oldest transaction id still running when a listener began (0 while it begins):
    a transaction below it had finished before that listener's memory was emptied."""
    _, _, xmin = application_name.partition(" ")
    return int(xmin) if xmin.isdigit() else 0


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


def _connect_params() -> dict[str, Any]:
    """The app's PostgreSQL database, for a connection outside its pool."""
    db = database.obj
    return {"dbname": db.database, **{**db.connect_params, "connect_timeout": 1}}


def _follower() -> Follower:
    db = database.obj
    if isinstance(db, peewee.PostgresqlDatabase):
        return PostgresFollower(_connect_params())
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
