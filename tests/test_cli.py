"""Operator commands, through Flask's CLI runner."""

from conftest import browser, signed_up

from app import sessions
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
    from conftest import login, submit

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
    sessions.revoke_all(User.get().id, reason=sessions.REVOKED, now=clock())
    browser_two = browser(app)
    from conftest import login

    login(browser_two)
    result = app.test_cli_runner().invoke(args=["prune"])
    assert "Pruned 0 sessions" in result.output
    assert LoginSession.select().count() == 2


def test_an_operator_created_account_signs_in_without_a_verification_mail(make_app):
    from conftest import login

    app = make_app(GATEHOUSE_ENV="development", GATEHOUSE_EMAIL_VERIFICATION="required")
    result = app.test_cli_runner().invoke(
        args=["create-user", "ops@example.com", "--password", "a long operator passphrase"])
    assert result.exit_code == 0, result.output
    assert login(browser(app), "ops@example.com", "a long operator passphrase"
                 ).status_code == 302
