"""Operator commands, through Flask's CLI runner, and the real ``flask`` command."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from support import PASSWORD, browser, login, signed_up, submit

from app.models import LoginSession, RefreshToken, User
from app.sessions import rules, store

ROOT = Path(__file__).resolve().parent.parent


def test_create_user_then_sign_in(app):
    result = app.test_cli_runner().invoke(
        args=["create-user", "ops@example.com", "--password", "a long operator passphrase"])
    assert result.exit_code == 0, result.output
    assert User.get().email == "ops@example.com"


def test_create_user_applies_the_password_policy(app):
    result = app.test_cli_runner().invoke(args=["create-user", "ops@example.com",
                                                "--password", "short"])
    assert result.exit_code != 0 and "at least 15" in result.output
    assert not User.select().exists()


def test_create_user_with_a_taken_email_creates_nothing_and_says_so(app):
    signed_up(browser(app), "ops@example.com")
    result = app.test_cli_runner().invoke(
        args=["create-user", "OPS@example.com", "--password", "another long passphrase"])
    assert result.exit_code == 1
    assert "ops@example.com already has an account: nothing was created." in result.output
    assert User.select().count() == 1
    assert login(browser(app), "ops@example.com", PASSWORD).status_code == 302


def test_a_configuration_error_is_one_line_and_exit_1(tmp_path):
    """``flask --app wsgi prune`` in production without a SECRET_KEY: no traceback."""
    shutil.copy(ROOT / "wsgi.py", tmp_path)
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("GATEHOUSE_", "FLASK_")) and name not in
           ("SECRET_KEY", "DATABASE_URL")}
    flask = Path(sys.executable).parent / "flask"
    done = subprocess.run([str(flask), "--app", "wsgi", "prune"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("Error: SECRET_KEY is missing or weak: set at least 32 ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_prune_deletes_long_ended_sessions_and_their_tokens(app, clock):
    first, second = browser(app), browser(app)
    signed_up(first)
    login(second)
    submit(first, "/logout", {}, form_page="/account")
    clock.advance(31 * 24 * 3600)  # the signed-out one ended more than 30 days ago
    assert "Pruned 1 sessions" in app.test_cli_runner().invoke(args=["prune"]).output
    clock.advance(30 * 24 * 3600)  # the other expired (30-day maximum age) 30 days ago
    result = app.test_cli_runner().invoke(args=["prune"])
    assert result.exit_code == 0 and "Pruned 1 sessions" in result.output
    assert not LoginSession.select().exists() and not RefreshToken.select().exists()


def test_prune_keeps_live_and_recently_ended_sessions(app, clock):
    client = browser(app)
    signed_up(client)
    store.revoke_all(User.get().id, reason=rules.REVOKED, now=clock())
    browser_two = browser(app)
    login(browser_two)
    result = app.test_cli_runner().invoke(args=["prune"])
    assert "Pruned 0 sessions" in result.output
    assert LoginSession.select().count() == 2


def test_an_operator_created_account_signs_in_without_a_verification_mail(make_app):
    from support import login

    app = make_app(GATEHOUSE_ENV="development", GATEHOUSE_EMAIL_VERIFICATION="required")
    result = app.test_cli_runner().invoke(
        args=["create-user", "ops@example.com", "--password", "a long operator passphrase"])
    assert result.exit_code == 0, result.output
    assert login(browser(app), "ops@example.com", "a long operator passphrase"
                 ).status_code == 302
