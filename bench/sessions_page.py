"""Server time of the sessions pages for one well-used account: ``python -m bench.sessions_page``.

One person with 100 live sessions on 25 devices (10 of them named), 20 ended sessions (one
with a thousand refused uses after it was signed out) and 1,000 security events, among 100
other accounts. The WSGI app is called directly, in process, so what is timed is Flask,
Gatehouse, the templates and the database, without HTTP. Figures are wall-clock milliseconds
per request (the database's own time included), median of ``--rounds`` rounds of ``--calls``.

SQLite in a temporary file by default; with ``DATABASE_URL`` it empties and reseeds that
database, refusing one holding accounts the benchmark did not create.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import tempfile
import time

from app import settings, tokens
from app.db import database
from app.models import KnownDevice, LoginSession, SecurityEvent, User
from app.settings import ISSUER
from bench import seed
from bench.inprocess import SECRET, call, environ
from bench.seed import is_postgres

LIVE, DEVICES, NAMED, ENDED, EVENTS, REFUSED = 100, 25, 10, 20, 1_000, 1_000
KINDS = ("sign_in", "sign_in_failed", "reauth_failed", "current_password_failed",
         "password_changed", "revoked", "address_changed")


def seed_person(now: float) -> tuple[str, str]:
    """Seed the population; return the Cookie header of the person's browser and the public
    id of their ended session with many refused uses."""
    seed.reset()
    seed.seed(settings.current().keys, users=100, sessions=0, password_hash="x", now=now)
    user = User.get_by_id(1)
    devices = [tokens.token_hash(f"bench device {d}") for d in range(DEVICES)]
    with database.atomic():
        for d, digest in enumerate(devices):
            KnownDevice.create(user=user, device_hash=digest, first_seen_at=now - 86400,
                               last_seen_at=now, label="Firefox 128 on Linux",
                               name=f"Laptop {d}" if d < NAMED else "")
        rows = [_session(user, i, devices[i % DEVICES], now) for i in range(LIVE + ENDED)]
        for row in rows[LIVE:]:
            row.ended_at, row.end_reason, row.ended_by = now - 600, "revoked", rows[0].public_id
        rows[-1].refused_uses, rows[-1].last_refused_at = REFUSED, now - 5
        for row in rows:
            row.save(force_insert=True)
        SecurityEvent.insert_many([
            {"user": user, "session": rows[i % len(rows)].id, "kind": KINDS[i % len(KINDS)],
             "ip_address": f"198.51.100.{i % 250}", "device_hash": devices[i % DEVICES],
             "created_at": now - i} for i in range(EVENTS)]).execute()
    if is_postgres():
        database.execute_sql("ANALYZE")  # as autovacuum would have, long before 1,000 events
    config = settings.current()
    access = tokens.encode_access(config.keys, issuer=ISSUER, user_id=user.public_id,
                                  session_id=rows[0].public_id, generation=0, now=int(now),
                                  expires_at=int(now) + 3600)
    return f"__Host-access={access}", rows[-1].public_id


def _session(user: User, i: int, device: str, now: float) -> LoginSession:
    return LoginSession(
        public_id=tokens.new_public_id(), user=user, created_at=now - 3600 - i,
        authenticated_at=now - 60, last_active_at=now - i, absolute_expires_at=now + 86400,
        generation=i, current_hash=tokens.token_hash(f"bench {i}"), rotated_at=now - i,
        user_agent=seed.AGENT, device_name="Firefox 128 on Linux", ip_address="198.51.100.7",
        last_user_agent=seed.AGENT, last_ip_address="127.0.0.1", device_hash=device)


def per_request_ms(app, env: dict, rounds: int, calls: int) -> tuple[float, float]:
    """Median over rounds of the mean wall-clock and CPU milliseconds of one request. On a
    busy machine wall time includes waiting for a core; CPU time is the work itself (the
    database's too, on SQLite, which runs in the process)."""
    for _ in range(20):
        call(app, env)
    wall, cpu = [], []
    for _ in range(rounds):
        started, used = time.perf_counter(), time.process_time()
        for _ in range(calls):
            call(app, env)
        wall.append((time.perf_counter() - started) / calls * 1e3)
        cpu.append((time.process_time() - used) / calls * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sessions_page", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        workdir = tempfile.mkdtemp(prefix="gatehouse-sessions-page-")
        atexit.register(shutil.rmtree, workdir, True)
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/p.sqlite3"
    os.environ.update(SECRET_KEY=SECRET, GATEHOUSE_ENV="production",
                      GATEHOUSE_EMAIL_VERIFICATION="off")
    from bench.site import app  # reads the environment set just above

    with app.app_context(), database.connection_context():
        cookie, ended = seed_person(time.time())
    pages = {
        f"/sessions ({LIVE} live sessions, {EVENTS:,} events)": "/sessions",
        "/sessions, last page of activity": "/sessions?events=50",
        f"/sessions/<id> (ended, {REFUSED:,} refused uses)": f"/sessions/{ended}",
        "/sessions/revoke-others (the count)": "/sessions/revoke-others",
    }
    engine = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
    print(f"server time per request, {engine}, median of {args.rounds} x {args.calls}")
    print(f"  {'page':48} {'wall':>8} {'CPU':>8}")
    for name, path in pages.items():
        env = environ(path, cookie)
        status, body = call(app, env)
        assert status.startswith("200"), (path, status)
        if path == "/sessions":  # a page of 20 sessions, of the 100, grouped by device
            assert body.count(b"data-session-id=") == 20, "the page lost its sessions"
        wall, cpu = per_request_ms(app, env, args.rounds, args.calls)
        print(f"  {name:48} {wall:5.1f} ms {cpu:5.1f} ms")


if __name__ == "__main__":
    main()
