"""In-process cost per request, without gunicorn or wrk: ``python -m bench.inprocess``.

Calls the WSGI app directly with a prepared environ, so what is timed is Flask plus Gatehouse
and nothing else. ``--profile PATH`` prints a pyinstrument profile of that path. Figures are
CPU microseconds per request (process time: other load on the machine barely
shifts it), median of five rounds.

``--callgrind`` counts instead the instructions one request executes, under ``valgrind
--tool=callgrind``: a figure other work on the machine does not move, because the app's clock
is stopped at the instant the sessions were seeded (no "last active" write falls due, no token
expires, however slowly valgrind runs). It depends on the hash seed (the child runs with
``PYTHONHASHSEED=0`` unless another is set), on the build of Python and on the engine, which it
prints first: compare figures printed under the same line. The script runs itself
under valgrind, which writes its counters out each time ``os.sched_yield()`` is called, just
before and just after ``CALLGRIND_CALLS`` requests of each case. With ``DATABASE_URL`` set
(PostgreSQL), it runs on that database, which it empties, like ``python -m bench``; the
instructions of the PostgreSQL server are not counted, only the app's.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import gc
import itertools
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from werkzeug.test import EnvironBuilder

from app import settings, tokens
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.db import database
from app.models import LoginSession, User
from app.settings import ISSUER
from bench import seed

SECRET = "in-process-benchmark-secret-0123456789abcdef"
WARMUP, ROUNDS, CALLS = 200, 5, 2000
CALLGRIND_CASES = ("bare Flask route", "authenticated page", "GET /api/me", "rotation")
# 100 signed-in browsers, each seen in the warm-up: the steady state, in which every worker has
# served (and remembers) the sessions it is asked about.
CALLGRIND_BROWSERS, CALLGRIND_WARMUP, CALLGRIND_CALLS = 100, 150, 200


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
    # The browser and address the seeded sessions were last seen from, as in ``python -m
    # bench``: a rotation from elsewhere is the uncommon case, with events to write.
    return EnvironBuilder(path=path, headers={"Cookie": cookie, "User-Agent": seed.AGENT},
                          base_url="https://localhost",
                          environ_overrides={"REMOTE_ADDR": seed.LAST_ADDRESS}).get_environ()


def seed_browsers(app, sessions: int, now: float) -> tuple[list[str], list[str]]:
    """Seed a fresh database with ``sessions`` sessions as of ``now``; return, for each live
    one, the Cookie header of a signed-in browser (an access token issued at ``now``) and of
    one holding only the session cookie (its next request rotates)."""
    with app.app_context(), database.connection_context():
        seed.reset()
        seed.seed(settings.current().keys, users=100, sessions=sessions, password_hash="x",
                  now=now)
        config, now = settings.current(), int(now)
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
    parser.add_argument("--callgrind", action="store_true",
                        help="instructions per request, under valgrind")
    parser.add_argument("--under-callgrind", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.callgrind:
        return callgrind()
    workdir = tempfile.mkdtemp(prefix="gatehouse-inprocess-")
    atexit.register(shutil.rmtree, workdir, True)
    os.environ.update(DATABASE_URL=os.environ.get("DATABASE_URL")
                      or f"sqlite:///{workdir}/p.sqlite3", SECRET_KEY=SECRET,
                      GATEHOUSE_ENV="production", GATEHOUSE_EMAIL_VERIFICATION="off",
                      GATEHOUSE_ARGON2_TIME_COST="1",
                      GATEHOUSE_ARGON2_MEMORY_KIB="8")
    from bench.bare import app as bare  # the apps read the environment set just above
    from bench.site import app

    if args.under_callgrind:
        browsers, calls = CALLGRIND_BROWSERS, CALLGRIND_WARMUP + CALLGRIND_CALLS
    else:
        browsers, calls = 1000, WARMUP + ROUNDS * CALLS
    seeded_at = time.time()
    signed_in, rotating = seed_browsers(app, 2 * (calls + browsers), seeded_at)
    signed_in, rotating = signed_in[:browsers], rotating[browsers:]
    if args.under_callgrind:
        # The app's clock stops at the seeding instant: under valgrind, wall-clock time runs
        # 50 times slower than the code, so how many seeded sessions had their once-a-minute
        # "last active" write fall due inside a count depended on the machine's load (one
        # build, one seed: 628,533 and 734,432 instructions for the page). Stopped, no write
        # falls due (each was last active within the minute before) and no token expires.
        app.extensions["gatehouse"] = dataclasses.replace(settings.of(app),
                                                          clock=lambda: seeded_at)
    cases = {
        "bare Flask route": (bare, [environ("/", "")]),
        "hardened bare route": (bare, [environ("/hardened", c) for c in signed_in]),
        "authenticated page": (app, [environ("/bench/page", c) for c in signed_in]),
        "GET /api/me": (app, [environ("/api/me", c) for c in signed_in]),
        "/account (template)": (app, [environ("/account", c) for c in signed_in]),
        "rotation": (app, [environ("/bench/page", c) for c in rotating]),
    }
    if args.under_callgrind:
        for name in CALLGRIND_CASES:
            counted(*cases[name])
        return
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


def counted(app, environs: list[dict]) -> None:
    """Warm up, then CALLGRIND_CALLS requests between two dumps of valgrind's counters."""
    feed = iter(environs * (1 + (CALLGRIND_WARMUP + CALLGRIND_CALLS) // len(environs)))
    for _ in range(CALLGRIND_WARMUP):
        call(app, next(feed))
    batch = [next(feed) for _ in range(CALLGRIND_CALLS)]
    # A full garbage collection walks every object of the process: one falling in the batch
    # or not moved a figure by a quarter. Everything alive now is set aside first.
    gc.collect()
    gc.freeze()
    os.sched_yield()
    for environ in batch:
        call(app, environ)
    os.sched_yield()


def callgrind() -> None:
    """Run this script under callgrind; print the instructions per request of each case."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    # Run as a file: the project (or PYTHONPATH's) must be importable. String hashing is
    # randomised per process, and with it the order of sets and the collisions in dicts of
    # strings: a fixed seed (0, unless the caller chose one) takes that out of the figure.
    env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PYTHONHASHSEED": "0",
           **os.environ}
    engine = "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else (
        "SQLite")
    print(f"PYTHONHASHSEED={env['PYTHONHASHSEED']}, {platform.python_implementation()} "
          f"{platform.python_version()} ({' '.join(platform.python_build())}, "
          f"{platform.python_compiler()}), {engine}")
    with tempfile.TemporaryDirectory(prefix="gatehouse-callgrind-") as out:
        subprocess.run(["valgrind", "--tool=callgrind", "--dump-before=sched_yield",
                        f"--callgrind-out-file={out}/cg.out", sys.executable, __file__,
                        "--under-callgrind"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=1800, env=env)
        dumps = sorted(Path(out).glob("cg.out.*"), key=lambda p: int(p.suffix[1:]))
        # Dumps 1, 3, 5... end with a warm-up; 2, 4, 6... hold the counted requests.
        for name, dump in zip(CALLGRIND_CASES, dumps[1::2], strict=True):
            total = int(re.search(r"^(?:summary|totals): (\d+)", dump.read_text(),
                                  re.MULTILINE).group(1))
            print(f"{name:24} {total / CALLGRIND_CALLS:12,.0f} instructions")


if __name__ == "__main__":
    main()
