"""PostgreSQL: what several app instances share.

Every wait is bounded: connecting (3 s), a statement or a row lock (10 s), a transaction left
idle by a stuck worker (15 s, so its row locks are released), data a vanished server never
acknowledges (10 s), a free pooled connection (10 s). The pool checks an idle connection with
a round trip before lending it, so one broken by an outage is replaced once the database is
back.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from weakref import WeakKeyDictionary

import peewee
from playhouse.pool import PooledPostgresqlDatabase

from app.db.engine import SWAP_SQL, Engine
from app.liveness import confirm
from app.liveness.follower import Follower
from app.liveness.listener import CHANNEL, PostgresFollower

log = logging.getLogger("gatehouse.db")

SCHEMA_LOCK = 0x6761746568  # an advisory lock key shared by every instance: "gateh"
TIMEOUTS = ("-c statement_timeout=10000 -c lock_timeout=10000 "
            "-c idle_in_transaction_session_timeout=15000")
# A schema upgrade waits for another and runs as long as it takes (a statement rewriting a
# table of millions of sessions takes tens of seconds).
MIGRATION_TIMEOUTS = ("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0; "
                      "SET LOCAL idle_in_transaction_session_timeout = 0")
_UNKNOWN_STATEMENT, _ALREADY_PREPARED = "26000", "42P05"  # PostgreSQL's error codes

# The change logged, and its NOTIFY sent, in one statement.
_LOG_SQL = (
    "WITH c AS (INSERT INTO session_change (session_id, user_id, created_at) "
    "VALUES ({p}, {p}, {p}) RETURNING id) "
    f"SELECT id, pg_current_xact_id()::text, pg_notify('{CHANNEL}', id || ' ' || {{p}}) FROM c"
)
# The rotation's swap, its token and its change logged: one statement, one round trip.
_SWAP_SQL = (
    f"WITH s AS ({SWAP_SQL} RETURNING id, generation), "
    "t AS (INSERT INTO refresh_token (token_hash, session_id, generation, issued_at) "
    "SELECT CAST({p} AS TEXT), id, generation, CAST({p} AS DOUBLE PRECISION) FROM s), "
    "c AS (INSERT INTO session_change (session_id, user_id, created_at) "
    "SELECT id, NULL, CAST({p} AS DOUBLE PRECISION) FROM s RETURNING id, session_id) "
    f"SELECT id, pg_notify('{CHANNEL}', id || ' s' || session_id) FROM c"
)

class PostgresEngine(PooledPostgresqlDatabase, Engine):
    row_lock = " FOR UPDATE OF s"

    @classmethod
    def open(cls, name: str, *, host: str, port: int, user: str, password: str | None,
             pool_size: int, wait: float) -> PostgresEngine:
        return cls(name, host=host, port=port, user=user, password=password,
                   max_connections=pool_size, stale_timeout=300, timeout=wait,
                   connect_timeout=3, options=TIMEOUTS, tcp_user_timeout=10_000)

    def listen_params(self) -> dict[str, Any]:
        """This database, for a connection outside the pool (a listener's, say)."""
        return {"dbname": self.database, **{**self.connect_params, "connect_timeout": 1}}

    def run_hot(self, text: str, *params: object) -> Any:
        """PostgreSQL plans each statement anew, which costs it more than running these:
        each is prepared once per connection (a prepared statement outlives a rolled-back
        transaction; one dropped on the server, by ``DISCARD ALL``, is prepared again)."""
        name, numbered, execute = _numbered(text)
        prepared = _prepared_on.setdefault(self.connection(), set())
        if name in prepared:
            try:
                return self.execute_sql(execute, params)
            except peewee.DatabaseError as error:
                if _code(error) != _UNKNOWN_STATEMENT or self.in_transaction():
                    raise
                prepared.discard(name)
        try:
            self.execute_sql(f"PREPARE {name} AS {numbered}")
        except peewee.DatabaseError as error:
            if _code(error) != _ALREADY_PREPARED or self.in_transaction():
                raise
        prepared.add(name)
        return self.execute_sql(execute, params)

    def prepared_text(self, name: str) -> str:
        """The SQL a statement prepared as ``name`` runs (for reading a statement log)."""
        return _texts[name]

    def forget_prepared(self) -> None:
        """Lose track of what this connection has prepared, as after a bookkeeping loss: the
        next use prepares again, and finds the statement there already."""
        _prepared_on.pop(self.connection(), None)

    def write_transaction(self) -> AbstractContextManager[None]:
        return self.atomic()

    def locked(self, query: peewee.Select, kind: str = "FOR UPDATE") -> peewee.Select:
        # peewee takes the lock clause as a string too; its annotation says only bool.
        return query.for_update(kind)  # type: ignore[arg-type]

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        # Workers of several instances may start at once: they queue on an advisory lock, as
        # long as the upgrade takes. A migration may rewrite a large table, so neither it nor
        # the wait runs under a request's timeouts (SET LOCAL: for this transaction only).
        with self.connection_context(), self.atomic():
            self.execute_sql(MIGRATION_TIMEOUTS)
            if not self.execute_sql("SELECT pg_try_advisory_xact_lock(%s)",
                                    (SCHEMA_LOCK,)).fetchone()[0]:
                log.info("waiting for another process to finish upgrading the schema")
                self.execute_sql("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            yield

    def follower(self) -> Follower:
        return PostgresFollower(self.listen_params())

    def log_change(self, session_id: int | None, user_id: int | None, now: float, *,
                   confirmed: bool) -> None:
        target = f"s{session_id}" if session_id is not None else f"u{user_id}"
        if not confirmed:
            self.fetch_one(_LOG_SQL, session_id, user_id, now, target)
            return
        pid = self.connection().get_backend_pid()
        # LISTEN takes effect at commit, as the notification does: no confirmation is missed.
        cursor = self.execute_sql(f"LISTEN {confirm.ack_channel(pid)}; {self.sql(_LOG_SQL)}",
                                  (session_id, user_id, now, f"{target} {pid}"))
        change_id, xid, _ = cursor.fetchone()
        confirm.after_commit(self, change_id, int(xid))

    def swap(self, session_id: int, generation: int, successor_hash: str, now: float,
             credential_epoch: int, user_epoch: int) -> bool:
        return self.fetch_one(_SWAP_SQL, generation + 1, successor_hash, now, now, session_id,
                              generation, credential_epoch, user_epoch, successor_hash, now,
                              now, hot=True) is not None


# The statements prepared on each connection (a connection the pool replaces is a new object,
# with none).
_prepared_on: WeakKeyDictionary[Any, set[str]] = WeakKeyDictionary()
_texts: dict[str, str] = {}  # each prepared statement's name and its SQL


@functools.cache
def _numbered(text: str) -> tuple[str, str, str]:
    """A name for ``text``, its text with PostgreSQL's ``$1, $2...``, and the statement that
    executes it with the driver's ``%s`` for each."""
    first, *rest = text.split("{p}")
    numbered = first + "".join(f"${number}{part}" for number, part in enumerate(rest, 1))
    name = f"gatehouse_{hashlib.sha1(text.encode()).hexdigest()[:16]}"
    _texts[name] = text
    arguments = f" ({', '.join(['%s'] * len(rest))})" if rest else ""
    return name, numbered, f"EXECUTE {name}{arguments}"


def _code(error: peewee.DatabaseError) -> str | None:
    """PostgreSQL's code for the driver's error that peewee's wraps."""
    return getattr(getattr(error, "orig", None), "pgcode", None)
