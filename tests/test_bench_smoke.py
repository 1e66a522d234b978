"""The benchmark command runs end to end at a tiny scale. Correctness only: no speed is
asserted (the figures belong to `python -m bench`, not to the test suite)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from servers import ROOT
from support import skip_or_fail

pytestmark = pytest.mark.slow


def test_bench_runs_and_checks_its_own_rotations(make_app):
    """On PostgreSQL it seeds the test database; make_app's teardown empties it again."""
    make_app()
    if shutil.which("wrk") is None:
        skip_or_fail("wrk is not installed (apt-get install wrk; .ci/run installs it)")
    env = {**os.environ, "GATEHOUSE_ARGON2_TIME_COST": "1", "GATEHOUSE_ARGON2_MEMORY_KIB": "8"}
    env.pop("DATABASE_URL", None)
    if os.environ.get("TEST_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--users", "50", "--sessions", "20000", "--duration", "1",
         "--connections", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout
    assert "| authenticated page (valid access cookie + liveness check) |" in table
    assert "FAILED" not in table
    assert " 0 with more than one successor; 0 extra tokens; 0 reuse events" in table
    assert "not run; pass --million" in table
    assert "| an app's `GET /api/me` (bearer token + liveness check) |" in table
    assert "| an app's refresh (`POST /oauth/token`, own session each) |" in table
    assert " app sessions rotated for " in table


def test_the_sessions_page_benchmark_seeds_and_renders_every_page(make_app):
    """Correctness only: each page it times answers 200 with the seeded person's data."""
    make_app()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if os.environ.get("TEST_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
    done = subprocess.run([sys.executable, "-m", "bench.sessions_page", "--rounds", "1",
                           "--calls", "1"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/sessions (100 live sessions, 1,000 events)" in done.stdout
    assert done.stdout.count(" ms ") == 4
