"""The README's Playwright example, run as written against a development server (only its
address changed), in Debian's Chromium."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from e2e.support import require_browser
from servers import ROOT, Server, server_env
from support import SECRET, reset_database

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("## Testing your site with Gatehouse")[1]
    (block,) = re.findall(r"^```python\n(.*?)^```$", section.split("\n## ")[0],
                          flags=re.S | re.M)
    return block


def test_the_readme_playwright_example_sees_reuse_detection(database_url):
    require_browser()
    env = server_env(database_url, SECRET, GATEHOUSE_ENV="development")
    try:
        with Server(env, workers=2, threads=4) as server:
            run_example(server)
    finally:
        reset_database()  # a shared PostgreSQL database is left empty


def run_example(server: Server) -> None:
    script = readme_example().replace("http://127.0.0.1:5000", server.url)
    assert script != readme_example()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "event" in server.output() and '"reuse_detected"' in server.output()
