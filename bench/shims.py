"""What each speed shim saves, in instructions: ``python -m bench.shims`` (needs valgrind).

Each variant runs in its own process under callgrind: the real app, and the app with one shim
taken out (Flask's own ``Request`` for ``CookieRequest``, Flask's own session interface for
``LazySession``). Instructions are counted only inside the measured loop (callgrind collects
inside ``functools.reduce``, which drives it), so the figures do not move with the machine's
load as timings do. Results are in bench/RESULTS.md, "Speed shims".
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

CALLS = 300
VARIANTS = ("all shims", "no CookieRequest", "no LazySession")
PATHS = ("/api/me", "/bench/page")


def measure(variant: str, path: str) -> None:
    """In the process callgrind watches: warm up, then make CALLS requests inside reduce."""
    workdir = tempfile.mkdtemp(prefix="gatehouse-shims-")
    os.environ.update(DATABASE_URL=f"sqlite:///{workdir}/s.sqlite3",
                      SECRET_KEY="in-process-benchmark-secret-0123456789abcdef",
                      GATEHOUSE_ENV="production", GATEHOUSE_ARGON2_TIME_COST="1",
                      GATEHOUSE_ARGON2_MEMORY_KIB="8")
    import flask
    from flask.sessions import SecureCookieSessionInterface

    from bench.inprocess import call, environ, seed_browsers
    from bench.site import app

    if variant == "no CookieRequest":
        app.request_class = flask.Request
    elif variant == "no LazySession":
        app.session_interface = SecureCookieSessionInterface()
    signed_in, _ = seed_browsers(app, CALLS + 100, time.time())
    requests = [environ(path, cookie) for cookie in signed_in[:CALLS]]
    for _ in range(2):  # every session's "last active" is written now, not while measured
        for prepared in requests:
            assert call(app, prepared)[0].startswith("200")
    functools.reduce(lambda _, prepared: call(app, prepared), requests, None)
    shutil.rmtree(workdir, ignore_errors=True)


def instructions(variant: str, path: str) -> float:
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no",
             "--toggle-collect=functools_reduce", f"--callgrind-out-file={out.name}",
             sys.executable, "-m", "bench.shims", "--measure", variant, path],
            check=True, capture_output=True)
        total = re.search(rb"^summary: (\d+)", out.read(), re.MULTILINE)
    assert total, "callgrind wrote no summary"
    return int(total.group(1)) / CALLS


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        measure(sys.argv[2], sys.argv[3])
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install valgrind")
    for path in PATHS:
        figures = {variant: instructions(variant, path) for variant in VARIANTS}
        base = figures["all shims"]
        print(f"GET {path}: " + "; ".join(
            f"{variant} {count:,.0f} ({count / base:.3f})" for variant, count in figures.items()))


if __name__ == "__main__":
    main()
