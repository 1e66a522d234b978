"""What anonymous requests may add to the database: a counter per address, kind and hour,
never a row each; per-person events stay rows; old events are pruned."""

import secrets

import pytest
from support import browser, login, signed_up

from app import audit
from app.carriers import SESSION_COOKIE
from app.models import AnonymousFailure, SecurityEvent, User

DAY = 24 * 3600


@pytest.fixture
def app(make_app):
    return make_app(GATEHOUSE_SESSION_LIMIT_IP=20, GATEHOUSE_LOGIN_LIMIT_WINDOW=600)


def test_anonymous_refusals_are_counted_not_stored_one_by_one(app):
    client = browser(app)
    for _ in range(100):
        assert client.post("/login", data={"email": "x@example.com", "password": "y"}
                           ).status_code == 400  # no CSRF token
    for _ in range(100):
        client.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(32))
        assert client.get("/api/me").status_code in (401, 429)
    assert SecurityEvent.select().count() == 0
    assert AnonymousFailure.select().count() == 2  # one per kind, this hour, this address
    assert audit.anonymous_count("csrf_failed") == 100
    assert audit.anonymous_count("throttled") == 80  # every guess after the first 20


def test_an_ipv6_client_rotating_within_its_64_adds_no_rows(app):
    for n in range(50):
        client = browser(app)
        client.environ_base["REMOTE_ADDR"] = f"2001:db8:5:6::{n + 1:x}"
        client.post("/logout")
    assert AnonymousFailure.select().count() == 1
    assert AnonymousFailure.get().ip_address == "2001:db8:5:6::/64"


def test_events_about_a_person_are_still_rows(app):
    signed_up(browser(app))
    login(browser(app), password="not the password at all")
    user = User.get()
    kinds = [e.kind for e in SecurityEvent.select().where(SecurityEvent.user == user.id)]
    assert "sign_in_failed" in kinds and "sign_in" in kinds and "registered" in kinds


def test_prune_deletes_events_past_the_retention(make_app, clock):
    app = make_app(GATEHOUSE_EVENT_RETENTION=90 * DAY)
    signed_up(browser(app))  # events now
    browser(app).post("/logout")  # an anonymous count now
    clock.advance(89 * DAY)
    login(browser(app), password="not the password at all")  # a row 89 days later
    result = app.test_cli_runner().invoke(args=["prune"])
    assert result.exit_code == 0 and " 0 events" in result.output
    clock.advance(2 * DAY)  # the first events are 91 days old, the last 2 days
    result = app.test_cli_runner().invoke(args=["prune"])
    assert result.exit_code == 0, result.output
    assert [e.kind for e in SecurityEvent.select()] == ["sign_in_failed"]
    assert not AnonymousFailure.select().exists()
