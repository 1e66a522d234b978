"""What an anonymous or hostile client costs: the scenarios of the outside review (issue 12),
measured against gunicorn with 4 workers x 8 threads and the default argon2 profile.

    .venv/bin/python -m bench.abuse                       # SQLite (a temporary file)
    DATABASE_URL=postgresql://postgres@127.0.0.1/bench .venv/bin/python -m bench.abuse

With DATABASE_URL it drops and recreates Gatehouse's tables in that database. Prints one line
per figure; nothing here is asserted by the test suite.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

# The tests' HTTP helpers (real forms with their CSRF tokens) import their sibling modules.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers import Server, _form, request, server_env, sign_in, sign_up  # noqa: E402

from app import create_app  # noqa: E402
from app.db import database  # noqa: E402
from app.models import ALL, AnonymousFailure, LoginSession, SecurityEvent, User  # noqa: E402

PASSWORD = "correct horse battery staple"
SECRET = secrets.token_urlsafe(48)
WORKERS, THREADS = 4, 8


def reset_schema(url: str) -> None:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "TESTING": True})
    with app.app_context(), database.connection_context():
        database.drop_tables(ALL, safe=True)
    database.close_all()
    create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "TESTING": True})
    database.close_all()


def count(query) -> int:
    with database.connection_context():
        return query.count()


def me_median_ms(server: Server, jar: dict[str, str], seconds: float) -> float:
    times, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        request(server.port, "GET", "/api/me", cookies=jar)
        times.append((time.perf_counter() - start) * 1000)
        time.sleep(0.05)
    return statistics.median(times)


def registrations(server: Server, person: dict[str, str], seconds: float = 10) -> None:
    """8 connections from one address register new accounts for ``seconds``. That address is
    given in X-Forwarded-For (the server trusts one proxy), so that the other scenarios, from
    127.0.0.1, are not limited by this one."""
    idle = me_median_ms(server, person, 2)
    before, stop, statuses = count(User.select()), time.monotonic() + seconds, []

    def register(worker: int) -> None:
        jar: dict[str, str] = {}
        token = _form(server, "/register", jar)
        n = 0
        while time.monotonic() < stop:
            n += 1
            body = urlencode({"csrf_token": token, "email": f"r{worker}-{n}@example.com",
                              "password": PASSWORD}).encode()
            statuses.append(request(server.port, "POST", "/register", cookies=jar, body=body,
                                    headers={"Content-Type": "application/x-www-form-urlencoded",
                                             "X-Forwarded-For": "198.51.100.77"}).status)

    with ThreadPoolExecutor(9) as pool:
        for worker in range(8):
            pool.submit(register, worker)
        busy = pool.submit(me_median_ms, server, person, seconds - 1).result()
    created = count(User.select()) - before
    print(f"1. registration: {created} accounts created in {seconds:.0f} s by 8 connections "
          f"from one address ({statuses.count(429)} answered 429); /api/me median "
          f"{idle:.1f} ms idle, {busy:.1f} ms meanwhile")


def parallel_wrong_passwords(server: Server, attempts: int = 100) -> None:
    email = "victim@example.com"
    sign_up(server, email, PASSWORD)
    with database.connection_context():
        user = User.get(User.email == email)
    gate = threading.Barrier(attempts)

    def attempt(_: int) -> int:
        jar: dict[str, str] = {}
        token = _form(server, "/login", jar)
        body = urlencode({"csrf_token": token, "email": email,
                          "password": "a wrong password, guessed"}).encode()
        gate.wait(timeout=60)
        return request(server.port, "POST", "/login", cookies=jar, body=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                "X-Forwarded-For": "198.51.100.78"}).status

    with ThreadPoolExecutor(attempts) as pool:
        statuses = list(pool.map(attempt, range(attempts)))
    checks = count(SecurityEvent.select().where(SecurityEvent.user == user.id,
                                                SecurityEvent.kind == "sign_in_failed"))
    print(f"3. {attempts} parallel wrong passwords on one account: {checks} password checks "
          f"ran (limit 10); {statuses.count(429)} answered 429, {statuses.count(401)} 401")


def anonymous_rows(server: Server, total: int = 3000) -> None:
    before = count(SecurityEvent.select())
    counters = count(AnonymousFailure.select())
    start = time.monotonic()

    def hit(n: int) -> None:
        if n % 2:
            request(server.port, "POST", "/login", body=b"email=x%40example.com&password=y",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            request(server.port, "GET", "/api/me",
                    cookies={"__Host-session": secrets.token_urlsafe(32)})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(hit, range(total)))
    added = count(SecurityEvent.select()) - before
    counters = count(AnonymousFailure.select()) - counters
    print(f"5. {total} anonymous requests (POST /login without a token, junk session cookies) "
          f"in {time.monotonic() - start:.1f} s added {added} security_event rows "
          f"and {counters} anonymous_failure rows")


def session_cap(server: Server, sign_ins: int = 150) -> None:
    """Sign in over and over (each a new browser): the live sessions stop at the cap."""
    email = "capped@example.com"
    sign_up(server, email, PASSWORD)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: sign_in(server, email, PASSWORD), range(sign_ins - 1)))
    with database.connection_context():
        user = User.get(User.email == email)
        live = LoginSession.select().where(LoginSession.user == user.id,
                                           LoginSession.ended_at.is_null()).count()
    print(f"2. {sign_ins} sign-ins to one account: {live} sessions live afterwards")


def many_sessions(server: Server, url: str, sessions: int = 5000) -> None:
    """5,000 sessions written straight to the database (past any cap): what listing costs."""
    jar = sign_up(server, "many@example.com", PASSWORD)
    with database.connection_context():
        user = User.get(User.email == "many@example.com")
        now = time.time()
        rows = [{"public_id": secrets.token_urlsafe(16), "user": user.id, "created_at": now - i,
                 "authenticated_at": now - i, "last_active_at": now - i,
                 "absolute_expires_at": now + 86400, "current_hash": secrets.token_hex(32),
                 "rotated_at": now - i, "user_agent": f"Mozilla/5.0 (X11; Linux) Firefox/{i}.0",
                 "ip_address": "198.51.100.1"} for i in range(sessions)]
        with database.atomic():
            for start in range(0, len(rows), 500):
                LoginSession.insert_many(rows[start:start + 500]).execute()
    other = sign_up(server, "other@example.com", PASSWORD)
    for path in ("/sessions", "/api/sessions"):
        for _ in range(3 * WORKERS):  # every worker has its templates compiled
            request(server.port, "GET", path, cookies=jar, timeout=120)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            reply = request(server.port, "GET", path, cookies=jar, timeout=120)
            times.append((time.perf_counter() - start) * 1000)
        print(f"2. {path} with {sessions} sessions: median {statistics.median(times):.0f} ms "
              f"({reply.status}, {len(reply.body):,} bytes)")
    with ThreadPoolExecutor(4) as pool:
        busy = [pool.submit(request, server.port, "GET", "/api/sessions", cookies=jar,
                            timeout=120) for _ in range(4)]
        time.sleep(0.2)
        start = time.perf_counter()
        request(server.port, "GET", "/api/me", cookies=other, timeout=120)
        print(f"2. another person's /api/me with 4 such requests in flight: "
              f"{(time.perf_counter() - start) * 1000:.1f} ms")
        [future.result() for future in busy]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gatehouse-abuse-") as workdir:
        url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(workdir) / 'abuse.sqlite3'}"
        reset_schema(url)
        env = server_env(url, SECRET, GATEHOUSE_ARGON2_TIME_COST=2,
                         GATEHOUSE_ARGON2_MEMORY_KIB=19456, GATEHOUSE_TRUSTED_PROXIES=1)
        print(f"gunicorn {WORKERS} workers x {THREADS} threads, "
              f"{'PostgreSQL' if url.startswith('postgres') else 'SQLite'}, default argon2")
        with Server(env, workers=WORKERS, threads=THREADS) as server:
            person = sign_up(server, "person@example.com", PASSWORD)
            registrations(server, person)
            parallel_wrong_passwords(server)
            anonymous_rows(server)
            session_cap(server)
            many_sessions(server, url)


if __name__ == "__main__":
    main()
