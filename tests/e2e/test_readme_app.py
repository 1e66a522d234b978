"""The README's app example, run as written: a terminal app in Python's standard library signs
in through gunicorn, its person pressing Allow in Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from support import SECRET

from app import create_app, grants, liveness
from app.models import LoginSession
from e2e.support import ROOT, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def readme_app() -> str:
    """The one Python block of the README's "Apps" section (other sections have their own)."""
    section = (ROOT / "README.md").read_text().split("\n## Apps\n", 1)[1].split("\n## ")[0]
    (block,) = re.findall(r"^```python\n(.*?)^```$", section, flags=re.S | re.M)
    return block


def test_the_readme_app_signs_in_refreshes_and_signs_out(people, site, tmp_path):
    here = create_app({"TESTING": True, "SECRET_KEY": SECRET,
                       "DATABASE_URL": site.env["DATABASE_URL"],
                       "GATEHOUSE_EMAIL_VERIFICATION": "off"})
    with here.app_context():
        client_id = grants.register("Notes", ["http://127.0.0.1/callback"], now=time.time())
    # At the site's public address, which is the issuer the app checks `iss` against.
    public = site.env["GATEHOUSE_PUBLIC_URL"]
    person = people(host="localhost")
    email = person.sign_up("terminal")
    script = tmp_path / "notes_app.py"
    script.write_text(readme_app())
    # BROWSER=true: webbrowser.open runs `true URL`; the person opens it in Chromium instead.
    app = subprocess.Popen([sys.executable, str(script), public, client_id], text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={"PATH": "/usr/bin:/bin", "BROWSER": "true"})
    try:
        first = app.stdout.readline()
        assert first.startswith("Sign in in your browser: "), first + app.stderr.read()
        person.page.goto(first.split(": ", 1)[1].strip())
        expect(person.page.get_by_role("heading", level=1)).to_have_text(
            "Sign in to Notes on this device?")
        person.page.get_by_role("button", name="Allow").click()
        out, err = app.communicate(timeout=30)
    finally:
        app.kill()
    assert app.returncode == 0, err
    assert out.splitlines() == [f"Signed in as {email}", f"Refreshed, still {email}",
                                "Signed out"]
    with here.app_context():
        session = LoginSession.get(LoginSession.client_id == client_id)
        assert (session.end_reason, session.generation) == ("signed_out", 1)
    liveness.close(here)
