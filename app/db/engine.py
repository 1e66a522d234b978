"""What every engine offers the rest of the app, whatever the database behind it.

Each engine is a subclass of peewee's pooled database for it (as peewee's own
``playhouse/pool.py`` has one subclass per engine), adding what differs between SQLite and
PostgreSQL: how a writing transaction takes its lock, how rows are locked, how the hottest
statements run, the schema lock, how a worker follows session changes, how a change is
logged, and the rotation's one guarded write. Nothing outside ``app.db`` asks which engine it
has.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import peewee

if TYPE_CHECKING:
    from app.liveness.follower import Follower

# The swap of a rotation, guarded by what the rules decided on: the generation (a rotation or
# re-key since), the end, the session's credential epoch and its person's.
SWAP_SQL = ("UPDATE login_session SET generation = {p}, current_hash = {p}, rotated_at = {p}, "
            "successor_seen = FALSE, last_active_at = {p} WHERE id = {p} AND generation = {p} "
            "AND ended_at IS NULL AND credential_epoch = {p} AND (SELECT credential_epoch "
            'FROM "user" WHERE id = login_session.user_id) = {p}')
INSERT_TOKEN_SQL = ("INSERT INTO refresh_token (token_hash, session_id, generation, issued_at) "
                    "VALUES ({p}, {p}, {p}, {p})")
INSERT_CHANGE_SQL = ("INSERT INTO session_change (session_id, user_id, created_at) "
                     "VALUES ({p}, {p}, {p})")


class Engine:
    """The engine-specific half of a Gatehouse database (mixed into a peewee database)."""

    param: str  # peewee's placeholder for this engine
    row_lock = ""  # appended to a fixed SELECT that reads rows it will change

    # --- statements ---------------------------------------------------------------------

    def sql(self, text: str) -> str:
        """``text`` with this engine's placeholder for ``{p}``, formatted once."""
        return _bind(text, self.param)

    def run(self, text: str, *params: object) -> Any:
        """Run a fixed statement written with ``{p}`` placeholders."""
        database: peewee.Database = self  # type: ignore[assignment]
        return database.execute_sql(self.sql(text), params)

    def run_hot(self, text: str, *params: object) -> Any:
        """``run``, for a statement on nearly every request of its kind."""
        return self.run(text, *params)

    def fetch_one(self, text: str, *params: object, hot: bool = False) -> tuple[Any, ...] | None:
        """The first row of a fixed query. All rows are read, so the statement is done at
        once: a SQLite statement left part-read holds the connection's snapshot open."""
        rows = (self.run_hot if hot else self.run)(text, *params).fetchall()
        return rows[0] if rows else None

    # --- transactions and locks -----------------------------------------------------------

    def write_transaction(self) -> AbstractContextManager[None]:
        """A transaction that writes: two of them never both read the state before either
        wrote (SQLite takes its write lock up front; PostgreSQL's callers lock rows)."""
        raise NotImplementedError

    def locked(self, query: peewee.Select, kind: str = "FOR UPDATE") -> peewee.Select:
        """``query`` locking the rows it reads (``kind``), where the engine locks rows."""
        return query

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """One transaction in which only this process changes the schema."""
        raise NotImplementedError
        yield

    # --- what liveness needs ------------------------------------------------------------

    def follower(self) -> Follower:
        """How this worker learns of every session change committed by anyone."""
        raise NotImplementedError

    def log_change(self, session_id: int | None, user_id: int | None, now: float, *,
                   confirmed: bool) -> None:
        """Log, in the caller's transaction, that a session (or every session of a person)
        changed; ``confirmed``: return only once every listening worker has applied it."""
        raise NotImplementedError

    def swap(self, session_id: int, generation: int, successor_hash: str, now: float,
             credential_epoch: int, user_epoch: int) -> bool:
        """Advance the session from ``generation`` to its successor (token stored, change
        logged) unless anything the rules read has changed since; False, and nothing
        written, when it has."""
        raise NotImplementedError


@functools.cache
def _bind(text: str, param: str) -> str:
    return text.format(p=param)
