"""Seed a benchmark population fast: precomputed rows, bulk inserts, one argon2 hash for all.

Every seeded session gets a known handle, ``handle(i)``, whose refresh-token hash under the
server's ``SECRET_KEY`` is the stored ``current_hash``: the driver can then present any session,
exactly as the browser that holds it would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import peewee

from app import migrations, tokens
from app.config import LAST_ACTIVE_RESOLUTION
from app.db import database
from app.models import ALL, LoginSession, RefreshToken, User

EMAIL_DOMAIN = "bench.test"  # reserved TLD (RFC 2606): a seeded address is never a person's
ENDED_EVERY = 10  # one session in ten has ended (signed out), as in a lived-in database
BATCH = 5_000
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
# Each session's latest request came from where the benchmark drives it: the steady state, in
# which a request writes nothing (a new address is recorded once, like "last active").
LAST_ADDRESS = "127.0.0.1"


class NotABenchDatabase(RuntimeError):
    """The target database holds accounts the benchmark did not create; it is left alone."""



def is_postgres() -> bool:
    """Whether the app's database is PostgreSQL (the benchmark reports per engine)."""
    return isinstance(database.obj, peewee.PostgresqlDatabase)

def handle(i: int) -> str:
    """The session handle of seeded session ``i`` (the first handle of its family)."""
    digest = hmac.new(b"gatehouse bench handles", str(i).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def email(i: int) -> str:
    return f"user{i}@{EMAIL_DOMAIN}"


def live_session_ids(sessions: int) -> list[int]:
    """Indices of the seeded sessions that are live (the others have ended)."""
    return [i for i in range(sessions) if i % ENDED_EVERY != ENDED_EVERY - 1]


def reset() -> None:
    """Drop and recreate Gatehouse's tables, refusing a database with real accounts in it."""
    if database.table_exists(User._meta.table_name):
        foreign = User.select().where(~User.email.endswith(f"@{EMAIL_DOMAIN}")).count()
        if foreign:
            raise NotABenchDatabase(f"{foreign} accounts are not the benchmark's; refusing to "
                                    "empty this database. Point DATABASE_URL elsewhere.")
    database.drop_tables(ALL, safe=True)
    migrations.upgrade()  # the schema as every database gets it, its version recorded


def seed(keys: tokens.Keys, *, users: int, sessions: int, password_hash: str,
         now: float) -> None:
    """``users`` accounts sharing one password hash, ``sessions`` sessions spread over them."""
    _insert(User, ("id", "public_id", "email", "password_hash", "created_at",
                   "password_changed_at", "credential_epoch", "credential_reason"),
            ((u + 1, tokens.new_public_id(), email(u), password_hash, now - 86400, now - 86400,
              0, "") for u in range(users)))
    _insert(LoginSession, ("id", "public_id", "user_id", "created_at", "authenticated_at",
                           "last_active_at", "absolute_expires_at", "generation",
                           "current_hash", "rotated_at", "successor_seen", "rekeyed_at",
                           "rekey_generation", "credential_epoch", "user_agent", "device_name",
                           "ip_address", "last_user_agent", "last_ip_address", "ended_at",
                           "end_reason", "end_ip_address"),
            (_session_row(keys, i, users, now) for i in range(sessions)))
    _insert(RefreshToken, ("token_hash", "session_id", "generation", "issued_at"),
            ((_hash(keys, i), i + 1, 0, now - 3600) for i in range(sessions)))
    if is_postgres():  # ids were given explicitly: move the sequences past them
        for model in (User, LoginSession):
            table = model._meta.table_name
            database.execute_sql(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                 f"(SELECT max(id) FROM \"{table}\"))")
        database.execute_sql("ANALYZE")


def _hash(keys: tokens.Keys, i: int) -> str:
    return tokens.token_hash(tokens.refresh_token(keys, handle(i)))


def _session_row(keys: tokens.Keys, i: int, users: int, now: float) -> tuple:
    created = now - 3600 - (i % 86400)
    ended = i % ENDED_EVERY == ENDED_EVERY - 1
    # Last active within the past minute, spread as real traffic spreads it: "last active" is
    # written at most once a minute per session, and sessions all seeded at one instant would
    # have those writes all fall due in one phase.
    active = now - i % LAST_ACTIVE_RESOLUTION
    return (i + 1, secrets.token_urlsafe(16), i % users + 1, created, created, active, created
            + 30 * 86400, 0, _hash(keys, i), created, True, None, 0, 0, AGENT,
            "Firefox 128 on Linux", f"198.51.100.{i % 250}", AGENT, LAST_ADDRESS,
            now - 60 if ended else None, "signed_out" if ended else None, "")


def _insert(model, columns: tuple[str, ...], rows) -> None:
    """Insert ``rows`` in batches straight through the driver: the ORM costs ~100x per row."""
    table = model._meta.table_name
    names = ", ".join(f'"{c}"' for c in columns)
    with database.atomic():
        cursor = database.cursor()
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                _flush(cursor, table, names, len(columns), batch)
                batch = []
        if batch:
            _flush(cursor, table, names, len(columns), batch)


def _flush(cursor, table: str, names: str, width: int, batch: list[tuple]) -> None:
    if is_postgres():
        from psycopg2.extras import execute_values

        execute_values(cursor, f'INSERT INTO "{table}" ({names}) VALUES %s', batch,
                       page_size=len(batch))
    else:
        marks = ", ".join("?" * width)
        cursor.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', batch)
