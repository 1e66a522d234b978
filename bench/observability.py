"""What the request id, the request histogram and the access line cost one request:
``python -m bench.observability`` (needs valgrind).

A bare Flask route, called in-process, with and without ``logs.with_access_log`` around it;
instructions counted by callgrind between two ``os.sched_yield()`` calls, 1,000 requests after
a warm-up, so neither the machine's load nor the database moves the figures.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VARIANTS = ("bare", "no-histogram", "quiet", "text", "json")
CALLS = 1000


def run(variant: str) -> None:
    from flask import Flask
    from werkzeug.test import EnvironBuilder

    from app import logs, metrics

    sys.stderr = open(os.devnull, "w")  # what the lines cost to write, not a terminal's
    app = Flask("bare")

    @app.get("/")
    def index() -> str:
        return "<!doctype html><title>bare</title><p>Hello.</p>"

    if variant == "no-histogram":
        metrics.observe_request = lambda *args: None
    if variant != "bare":
        logs.configure("INFO" if variant in ("text", "json") else "WARNING",
                       "json" if variant == "json" else "text")
        app.wsgi_app = logs.with_access_log(app.wsgi_app)
    environ = EnvironBuilder(path="/", base_url="https://localhost").get_environ()

    def call() -> None:
        body = app(dict(environ), lambda status, headers, exc_info=None: None)
        b"".join(body)
        body.close()

    for _ in range(300):
        call()
    import gc
    gc.collect()
    gc.freeze()
    os.sched_yield()
    for _ in range(CALLS):
        call()
    os.sched_yield()


def main() -> None:
    if len(sys.argv) > 1:
        return run(sys.argv[1])
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    root = Path(__file__).resolve().parent.parent
    results = {}
    for variant in VARIANTS:
        with tempfile.TemporaryDirectory(prefix="gatehouse-callgrind-") as out:
            subprocess.run(["valgrind", "--tool=callgrind", "--dump-before=sched_yield",
                            f"--callgrind-out-file={out}/cg.out", sys.executable, __file__,
                            variant], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=900,
                           env={"PYTHONPATH": str(root), "PYTHONHASHSEED": "0", **os.environ})
            dumps = sorted(Path(out).glob("cg.out.*"), key=lambda p: int(p.suffix[1:]))
            total = int(re.search(r"^totals: (\d+)", dumps[1].read_text(), re.M).group(1))
            results[variant] = total / CALLS
            print(f"{variant:14} {results[variant]:10,.0f} instructions "
                  f"({results[variant] - results['bare']:+,.0f})")


if __name__ == "__main__":
    main()
