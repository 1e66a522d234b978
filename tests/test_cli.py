"""Operator commands, through Flask's CLI runner."""

from support import browser, signed_up

from app import session_rules, session_store
from app.models import LoginSession, RefreshToken, User


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


def test_prune_deletes_long_ended_sessions_and_their_tokens(app, clock):
    first, second = browser(app), browser(app)
    signed_up(first)
    from support import login, submit

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
    session_store.revoke_all(User.get().id, reason=session_rules.REVOKED, now=clock())
    browser_two = browser(app)
    from support import login

    login(browser_two)
    result = app.test_cli_runner().invoke(args=["prune"])
    assert "Pruned 0 sessions" in result.output
    assert LoginSession.select().count() == 2
