"""``python -m bench.inprocess --callgrind`` gives a figure that repeats: its child runs with a
fixed hash seed, and it says what the figure depends on. valgrind itself is not run here (the
figures belong to the benchmark, not to the test suite): its run is replaced by one that
records how it was asked and writes the dumps callgrind would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import ROOT

from bench import inprocess


@pytest.fixture
def valgrind(monkeypatch):
    """The child's environment, as valgrind would have been given it."""
    seen: list[dict[str, str]] = []

    def run(command, *, env, **kwargs):
        seen.append(env)
        out = Path(next(a for a in command if a.startswith("--callgrind-out-file="))
                   .split("=", 1)[1])
        for n in range(1, 2 * len(inprocess.CALLGRIND_CASES) + 1):
            (out.parent / f"{out.name}.{n}").write_text(f"totals: {n * 1000}\n")

    monkeypatch.setattr(inprocess.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(inprocess.subprocess, "run", run)
    return seen


def test_the_child_runs_with_a_fixed_hash_seed(valgrind, monkeypatch, capsys):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    inprocess.callgrind()
    assert [env["PYTHONHASHSEED"] for env in valgrind] == ["0"]
    out = capsys.readouterr().out
    first, *rows = out.splitlines()
    assert first.startswith("PYTHONHASHSEED=0, CPython 3.") and first.endswith(", SQLite")
    assert rows[1].split() == ["authenticated", "page", "20", "instructions"]  # dump 4 / 200


def test_a_seed_the_caller_chose_is_kept(valgrind, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/x")
    inprocess.callgrind()
    assert [env["PYTHONHASHSEED"] for env in valgrind] == ["7"]
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("PYTHONHASHSEED=7, ") and first.endswith(", PostgreSQL")


SLOW_AS_VALGRIND = """
import sys, time
sys.argv = ["inprocess", "--under-callgrind"]
from bench import inprocess
real, offset = time.time, [0.0]
time.time = lambda: real() + offset[0]
counted = inprocess.counted


def a_minute_later(app, environs):  # what valgrind's slowness does between two counts
    offset[0] += 61
    counted(app, environs)


inprocess.counted = a_minute_later
inprocess.main()
from app.db import database
from app.models import LoginSession
from bench.site import app
with app.app_context(), database.connection_context():
    latest = max(at for (at,) in LoginSession.select(LoginSession.last_active_at).tuples())
print(latest - real())
"""


def test_no_write_falls_due_however_slowly_the_counted_requests_run():
    """Under callgrind the app's clock stands still at the seeding instant: a "last active"
    write falling due in a count made the page's figure depend on the machine's load."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONHASHSEED")}
    done = subprocess.run([sys.executable, "-c", SLOW_AS_VALGRIND], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.split()[-1]) < 0  # nothing written later than the seeding
