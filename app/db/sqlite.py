"""SQLite (WAL), the embedded default: one machine, any number of worker processes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from playhouse.pool import PooledSqliteDatabase

from app.db.engine import INSERT_CHANGE_SQL, INSERT_TOKEN_SQL, SWAP_SQL, Engine
from app.liveness.follower import Follower, SqliteFollower

PRAGMAS = {"journal_mode": "wal", "synchronous": "normal", "foreign_keys": 1,
           "busy_timeout": 10_000}
MIGRATION_BUSY_TIMEOUT = 2**31 - 1  # milliseconds: SQLite's largest, about 24 days
MINIMUM = (3, 35)  # ALTER TABLE ... DROP COLUMN


class SqliteEngine(PooledSqliteDatabase, Engine):
    @classmethod
    def open(cls, path: str, pool_size: int, wait: float) -> SqliteEngine:
        if sqlite3.sqlite_version_info < MINIMUM:
            raise RuntimeError(f"SQLite {sqlite3.sqlite_version} is too old: Gatehouse needs "
                               f"{'.'.join(map(str, MINIMUM))} or newer")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return cls(path, pragmas=PRAGMAS, max_connections=pool_size, stale_timeout=300,
                   timeout=wait, check_same_thread=False)

    def write_transaction(self) -> AbstractContextManager[None]:
        # BEGIN IMMEDIATE: the write lock up front, so two rotations never both read the old
        # state (it is also every row lock SQLite has).
        return self.atomic("IMMEDIATE")

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        # Other workers starting meanwhile wait for the upgrade's write lock as long as it is
        # held (a migration may rewrite a table of millions of sessions), not a request's 10 s.
        with self.connection_context():
            self.execute_sql(f"PRAGMA busy_timeout = {MIGRATION_BUSY_TIMEOUT}")
            try:
                with self.write_transaction():
                    yield
            finally:
                self.execute_sql(f"PRAGMA busy_timeout = {PRAGMAS['busy_timeout']}")

    def follower(self) -> Follower:
        return SqliteFollower(self.database)

    def log_change(self, session_id: int | None, user_id: int | None, now: float, *,
                   confirmed: bool) -> None:
        # Every process sees it by its next request (PRAGMA data_version): nothing to await.
        self.run(INSERT_CHANGE_SQL, session_id, user_id, now)

    def swap(self, session_id: int, generation: int, successor_hash: str, now: float,
             credential_epoch: int, user_epoch: int) -> bool:
        with self.write_transaction():
            if not self.run(SWAP_SQL, generation + 1, successor_hash, now, now, session_id,
                            generation, credential_epoch, user_epoch).rowcount:
                return False
            self.run(INSERT_TOKEN_SQL, successor_hash, session_id, generation + 1, now)
            self.log_change(session_id, None, now, confirmed=False)
        return True
