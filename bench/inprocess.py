"""In-process cost per request, without gunicorn or wrk: ``python -m bench.inprocess``.

Calls the WSGI app directly with a prepared environ, so what is timed is Flask plus Gatehouse
and nothing else. ``--profile PATH`` prints a pyinstrument profile of that path. Figures are
CPU microseconds per request (process time: other load on the machine barely
shifts it), median of five rounds.
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import os
import shutil
import statistics
import tempfile
import time

from werkzeug.test import EnvironBuilder

from app import settings, tokens
from app.db import database
from app.middleware import ACCESS_COOKIE, SESSION_COOKIE
from app.models import LoginSession, User
from app.settings import ISSUER
from bench import seed

SECRET = "in-process-benchmark-secret-0123456789abcdef"
WARMUP, ROUNDS, CALLS = 200, 5, 2000


def call(app, environ: dict) -> tuple[str, bytes]:
    status = []
    body = app(dict(environ), lambda s, h, exc=None: status.append(s))
    data = b"".join(body)
    getattr(body, "close", lambda: None)()
    return status[0], data


def per_request_us(app, environs: list[dict]) -> float:
    """Median over rounds of the mean cost of one call, cycling through ``environs`` (each is
    used once when there are enough: a rotation must present a session's current handle)."""
    feed = itertools.cycle(environs)
    for _ in range(WARMUP):
        call(app, next(feed))
    rounds = []
    for _ in range(ROUNDS):
        batch = [next(feed) for _ in range(CALLS)]
        started = time.process_time()
        for environ in batch:
            call(app, environ)
        rounds.append((time.process_time() - started) / CALLS * 1e6)
    return statistics.median(rounds)


def environ(path: str, cookie: str) -> dict:
    return EnvironBuilder(path=path, headers={"Cookie": cookie, "User-Agent": "bench"},
                          base_url="https://localhost").get_environ()


def seed_browsers(app, sessions: int) -> tuple[list[str], list[str]]:
    """Seed a fresh database with ``sessions`` sessions; return, for each live one, the Cookie
    header of a signed-in browser (a fresh access token) and of one holding only the session
    cookie (its next request rotates)."""
    with app.app_context(), database.connection_context():
        seed.reset()
        seed.seed(settings.current().keys, users=100, sessions=sessions, password_hash="x",
                  now=time.time())
        config, now = settings.current(), int(time.time())
        users = dict(User.select(User.id, User.public_id).tuples())
        rows = list(LoginSession.select().where(LoginSession.ended_at.is_null())
                    .order_by(LoginSession.id))
    flask_cookie = app.test_client().get("/login").headers["Set-Cookie"].split(";")[0]

    def access(row) -> str:
        return tokens.encode_access(config.keys, issuer=ISSUER, user_id=users[row.user_id],
                                    session_id=row.public_id, generation=0, now=now,
                                    expires_at=now + config.policy.access_ttl)

    rotating = [f"{SESSION_COOKIE}={seed.handle(row.id - 1)}; {flask_cookie}" for row in rows]
    signed_in = [f"{ACCESS_COOKIE}={access(row)}; {cookie}"
                 for row, cookie in zip(rows, rotating, strict=True)]
    return signed_in, rotating


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--profile", metavar="PATH")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="gatehouse-inprocess-")
    atexit.register(shutil.rmtree, workdir, True)
    os.environ.update(DATABASE_URL=f"sqlite:///{workdir}/p.sqlite3", SECRET_KEY=SECRET,
                      GATEHOUSE_ENV="production", GATEHOUSE_EMAIL_VERIFICATION="off",
                      GATEHOUSE_ARGON2_TIME_COST="1",
                      GATEHOUSE_ARGON2_MEMORY_KIB="8")
    from bench.bare import app as bare  # the apps read the environment set just above
    from bench.site import app

    signed_in, rotating = seed_browsers(app, 2 * (WARMUP + ROUNDS * CALLS) + 2000)
    signed_in, rotating = signed_in[:1000], rotating[1000:]
    cases = {
        "bare Flask route": (bare, [environ("/", "")]),
        "hardened bare route": (bare, [environ("/hardened", c) for c in signed_in]),
        "authenticated page": (app, [environ("/bench/page", c) for c in signed_in]),
        "GET /api/me": (app, [environ("/api/me", c) for c in signed_in]),
        "/account (template)": (app, [environ("/account", c) for c in signed_in]),
        "rotation": (app, [environ("/bench/page", c) for c in rotating]),
    }
    if args.profile:
        from pyinstrument import Profiler

        target = next(k for k, (a, envs) in cases.items()
                      if envs[0]["PATH_INFO"] == args.profile and a is app)
        profiler = Profiler(interval=0.0001)
        profiler.start()
        per_request_us(*cases[target])
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False))
        return
    for name, (wsgi, envs) in cases.items():
        assert call(wsgi, envs[-1])[0].startswith("200"), name
        print(f"{name:24} {per_request_us(wsgi, envs):7.1f} µs")


if __name__ == "__main__":
    main()
