"""Following the log of session changes: the part every engine shares, and SQLite's way.

SQLite (one machine): ``PRAGMA data_version`` on a connection of the follower's own changes
whenever another connection has committed; only then is the log read past the last id seen.
A revocation has committed before its response is sent, so the next request, whichever
process serves it, sees it: exact.
"""

from __future__ import annotations

import sqlite3
import threading

from app.liveness.memory import Memory

LOG_SQL = "SELECT id, session_id, user_id FROM session_change WHERE id > ? ORDER BY id"
NEWEST_SQL = "SELECT coalesce(max(id), 0) FROM session_change"


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
                    for row in self.connection.execute(LOG_SQL, (self.last,)).fetchall():
                        self.apply(memory, *row)
                    self.restarted(memory, self.connection.execute(NEWEST_SQL).fetchone()[0])
                return True
            except sqlite3.Error:
                memory.clear()
                self.close()
                return False

    def _open(self, memory: Memory) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout = 10000")
        self.data_version = connection.execute("PRAGMA data_version").fetchone()[0]
        self.last = connection.execute(NEWEST_SQL).fetchone()[0]
        self.connection = connection
        memory.clear()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None
