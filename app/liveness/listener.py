"""How a worker follows session changes on PostgreSQL: LISTEN on a connection of its own, read
by a thread of its own.

The statement that logs a change also sends ``NOTIFY`` with its id (``app.db.postgres``); the
thread applies each change as it arrives and confirms those a revocation waits for
(``confirm``). Delivery is asynchronous: PostgreSQL signals each listening server process at
commit, which sends the notification when it next runs, so a request does not wait for the
thread: it takes one non-blocking look at the socket, for what has arrived and for a
connection ended under it, and does not trust the thread while it is in a round trip or has
not checked lately. The thread also reads the log's newest id every ``CHECK_EVERY`` seconds,
for a change whose notification was lost or that was logged by other means.

Whenever a change may have been missed, the memory is dropped and every request asks the
database: the connection lost or ended (it listens again at most once per ``RETRY``
seconds), an id still missing a check later (notifications come in commit order, not id
order), or the log's newest id ahead of what arrived.
"""

from __future__ import annotations

import select
import threading
import time
from typing import Any

import psycopg2  # type: ignore[import-untyped]

from app.liveness.follower import NEWEST_SQL, Follower
from app.liveness.memory import Memory

CHANNEL = "gatehouse_session_changes"
LISTENER_NAME = "gatehouse-listener"  # its application_name in pg_stat_activity, then its start
RETRY = 1.0  # seconds between attempts to listen again after the connection was lost
CHECK_EVERY = 1.0  # seconds between a listener's own looks at the newest change logged
STALE_AFTER = 2 * CHECK_EVERY + 1  # a listener not checked for this long is not trusted
MISSING_AT_MOST = 1000  # more ids skipped at once than this: forget everything at once
_NEWEST_NAME = "gatehouse_newest_change"
ERRORS = (psycopg2.Error, OSError, ValueError)  # a connection that failed, or was closed


def ack_channel(pid: int) -> str:
    """Where the workers confirm the changes of the connection of server process ``pid``."""
    return f"{CHANNEL}_ack_{pid}"


def parse(payload: str) -> tuple[int, str, int, int]:
    """``"<change id> <s|u><id> [<pid waiting>]"``."""
    change_id, target, *ack = payload.split(" ")
    return int(change_id), target[0], int(target[1:]), int(ack[0]) if ack else 0


class PostgresFollower(Follower):
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
        # instead, and so it is when its last check is too old.
        if not self.lock.acquire(blocking=False):
            return False
        try:
            if self.connection is None or time.monotonic() - self.checked_at > STALE_AFTER:
                return False
            # What has arrived, the thread may not have applied yet (a revocation's is
            # confirmed from here then: one round trip); a connection ended under this worker
            # (a revocation it never confirmed) shows here too.
            if select.select([self.connection], [], [], 0)[0]:
                self._receive()
            return True
        except ERRORS:
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
            except ERRORS:
                readable = True  # closed meanwhile, here or by close(): polling tells which
            with self.lock:
                if self.stopped or self.connection is not connection:
                    continue
                try:
                    if readable:
                        self._receive()
                    if time.monotonic() >= self.check_at:
                        self._check()
                except ERRORS:
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
            cursor.execute(f"PREPARE {_NEWEST_NAME} AS {NEWEST_SQL}")
            # After LISTEN: every later change is notified, every earlier one is read. The
            # oldest transaction still running then names the listener: one that commits a
            # revocation with a transaction id below it had finished before the memory was
            # emptied (below), so it need not wait for this worker. The server's own process
            # id (a pooler shows the client another), as pg_stat_activity lists it.
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
        change_id, kind, number, ack = parse(payload)
        self.apply(self.memory, change_id, number if kind == "s" else None,
                   number if kind == "u" else None)
        return change_id, ack

    def _check(self) -> None:
        """What no notification brought: one lost (an id newer than any received, or one
        skipped and still missing since the previous check), or a change logged by something
        else. Every CHECK_EVERY seconds; the notifications of every change committed before
        the query arrive before its answer."""
        assert self.memory is not None
        self.check_at = time.monotonic() + CHECK_EVERY
        before = self.last  # every change applied so far had committed before the query
        cursor = self.connection.cursor()
        cursor.execute(f"EXECUTE {_NEWEST_NAME}")
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
