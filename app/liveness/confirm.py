"""A revocation on PostgreSQL holds everywhere before its response is sent.

After its commit, the revoking request waits until every worker that was listening has
confirmed applying the change (a NOTIFY back on a channel of the revoking connection's).
Which workers must confirm is told by transaction ids, not change ids (those are taken before
commit, and commits can come in another order): a listener names itself after the oldest
transaction still running when it began. A worker that has not confirmed within ``ACK_WAIT``
seconds has its listening connection ended, and its server process gone, before the response:
its very next request finds the connection closed and forgets everything. When even that
cannot be shown, the revocation (which is recorded) answers ``RevocationUnconfirmed``.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from typing import Any

import psycopg2  # type: ignore[import-untyped]

from app.liveness.listener import LISTENER_NAME, ack_channel

ACK_WAIT = 2.0  # seconds a revocation waits for each listening worker to confirm it

log = logging.getLogger("gatehouse.liveness")


class RevocationUnconfirmed(Exception):
    """A revocation was committed, but not every worker could be shown to have applied it nor
    be cut off: the response must not claim it holds everywhere (503, try again)."""


_waits = threading.local()


def after_commit(database: Any, change_id: int, xid: int) -> None:
    """Wait for ``change_id`` (and every change before it) once the caller's transaction
    (``xid``) commits on ``database``, once per transaction however many changes it logged."""
    transaction = database.top_transaction()
    if transaction is not None and getattr(_waits, "transaction", None) is transaction:
        _waits.upto = max(_waits.upto, change_id)
        return
    _waits.transaction, _waits.upto, _waits.xid = transaction, change_id, xid
    database.after_commit(lambda: await_confirmations(database))


_LISTENERS_SQL = ("SELECT pid, application_name FROM pg_stat_activity "
                  "WHERE datname = current_database() AND application_name LIKE %s")


def await_confirmations(database: Any) -> None:
    """Return once every worker that listened before the change committed has confirmed
    applying it, or has been cut off."""
    change_id, xid, _waits.transaction = _waits.upto, _waits.xid, None
    connection = database.connection()
    channel = ack_channel(connection.get_backend_pid())
    try:
        unconfirmed = confirmations(connection, change_id, xid)
        if unconfirmed:
            cut_off(connection, unconfirmed, change_id)
    except psycopg2.Error as error:  # the connection failed after the commit
        log.warning("session change %s: confirmations lost with the connection (%s); ending "
                    "every listening connection", change_id, error)
        cut_off_everyone(database.listen_params(), change_id)
    finally:
        try:
            connection.cursor().execute(f"UNLISTEN {channel}")
        except psycopg2.Error:
            pass  # a broken connection is discarded by the pool
        connection.notifies.clear()


def confirmations(connection: Any, change_id: int, xid: int) -> set[int]:
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


def cut_off(connection: Any, pids: set[int], change_id: int) -> None:
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


def cut_off_everyone(connect: dict[str, Any], change_id: int) -> None:
    """End every listener that may have needed to confirm, on a connection of its own."""
    try:
        connection = psycopg2.connect(**connect)
    except psycopg2.Error as error:
        raise RevocationUnconfirmed(f"session change {change_id}: {error}") from error
    try:
        connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute(_LISTENERS_SQL, (f"{LISTENER_NAME}%",))
        cut_off(connection, {pid for pid, _ in cursor.fetchall()}, change_id)
    except psycopg2.Error as error:
        raise RevocationUnconfirmed(f"session change {change_id}: {error}") from error
    finally:
        connection.close()


def _listening_since(application_name: str) -> int:
    """The oldest transaction id still running when a listener began (0 while it begins):
    a transaction below it had finished before that listener's memory was emptied."""
    _, _, xmin = application_name.partition(" ")
    return int(xmin) if xmin.isdigit() else 0
