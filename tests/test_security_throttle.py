"""Checklist group 9: failures are throttled per account and per client address, in the
database, with 429 and Retry-After; the client address cannot be forged."""

import secrets

import pytest
from support import PASSWORD, browser, login, signed_up, submit

from app.middleware import ACCESS_COOKIE, SESSION_COOKIE
from app.models import SecurityEvent, Throttle

EMAIL = "ada@example.com"
WRONG = "not the password at all"


@pytest.fixture
def app(make_app):
    return make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=3, GATEHOUSE_LOGIN_LIMIT_IP=6,
                    GATEHOUSE_SESSION_LIMIT_IP=5, GATEHOUSE_LOGIN_LIMIT_WINDOW=600)


def from_ip(app, address: str):
    client = browser(app)
    client.environ_base["REMOTE_ADDR"] = address
    return client


def assert_throttled(response, window: int = 600):
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= window


def test_per_account_limit_holds_across_addresses_and_lifts_after_the_window(app, clock):
    signed_up(browser(app), EMAIL)
    for n in range(3):
        assert login(from_ip(app, f"198.51.100.{n}"), EMAIL, WRONG).status_code == 401
    assert_throttled(login(from_ip(app, "198.51.100.99"), EMAIL, PASSWORD))
    assert SecurityEvent.select().where(SecurityEvent.kind == "throttled").count() == 1
    clock.advance(601)
    assert login(from_ip(app, "198.51.100.99"), EMAIL, PASSWORD).status_code == 302


def test_per_address_limit_stops_password_spraying(app):
    client = from_ip(app, "192.0.2.50")
    for n in range(6):
        assert login(client, f"user{n}@example.com", WRONG).status_code == 401
    assert_throttled(login(client, "someone-else@example.com", WRONG))
    assert login(from_ip(app, "192.0.2.51"), "someone-else@example.com", WRONG).status_code == 401


def test_successful_sign_in_resets_the_account_counter(app):
    signed_up(browser(app), EMAIL)
    for _ in range(2):
        for _ in range(2):
            assert login(browser(app), EMAIL, WRONG).status_code == 401
        assert login(browser(app), EMAIL).status_code == 302


def test_current_password_checks_count_against_the_same_account_limit(app):
    client = browser(app)
    signed_up(client, EMAIL)
    for _ in range(3):
        response = submit(client, "/account/password",
                          {"current_password": WRONG, "new_password": "a brand new passphrase"})
        assert response.status_code == 200
    assert_throttled(login(from_ip(app, "192.0.2.9"), EMAIL))


def test_state_lives_in_the_database_and_is_shared_by_instances(make_app):
    first = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=2)
    signed_up(browser(first), EMAIL)
    login(browser(first), EMAIL, WRONG)
    second = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=2)  # another instance, same database
    login(browser(second), EMAIL, WRONG)
    assert Throttle.get(Throttle.key == f"account:{EMAIL}").failures == 2
    assert_throttled(login(browser(first), EMAIL), window=900)


def test_unknown_session_values_from_one_address_are_throttled(app):
    signed_up(browser(app), EMAIL)
    guesser = from_ip(app, "192.0.2.66")
    for _ in range(5):
        guesser.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(32))
        assert guesser.get("/api/me").status_code == 401
    guesser.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(32))
    refused = guesser.get("/api/me")
    assert_throttled(refused)
    assert guesser.get_cookie(SESSION_COOKIE) is None  # cleared: the person can sign in again
    guesser.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(32))
    assert_throttled(guesser.get("/account"))
    assert guesser.get("/login").status_code == 200  # no cookie, nothing to throttle
    other = from_ip(app, "192.0.2.67")
    other.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(32))
    assert other.get("/api/me").status_code == 401


def test_pages_without_a_session_cookie_are_not_throttled_by_guessing(app):
    guesser = from_ip(app, "192.0.2.66")
    for _ in range(6):
        guesser.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(32))
        guesser.get("/api/me")
    guesser.delete_cookie(SESSION_COOKIE)
    assert guesser.get("/login").status_code == 200


def test_a_forged_forwarded_for_does_not_move_the_counter(app):
    """With no trusted proxy, X-Forwarded-For is ignored: every attempt counts against the
    socket's address."""
    client = from_ip(app, "192.0.2.70")
    for n in range(6):
        login(client, f"user{n}@example.com", WRONG,
              headers={"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"203.0.113.{n}"})
    assert_throttled(login(client, "x@example.com", WRONG,
                           headers={"X-Forwarded-For": "203.0.113.200"}))
    assert not Throttle.select().where(Throttle.key.startswith("ip:203.0.113.")).exists()


def test_behind_one_trusted_proxy_the_address_it_saw_counts(make_app):
    """The client's own X-Forwarded-For entry is ignored; the proxy's appended one is used."""
    app = make_app(GATEHOUSE_TRUSTED_PROXIES=1)
    proxy = from_ip(app, "10.0.0.2")
    login(proxy, "x@example.com", WRONG, headers={"X-Forwarded-For": "1.2.3.4, 198.51.100.23"})
    keys = {row.key for row in Throttle.select()}
    assert "ip:198.51.100.23" in keys and "ip:1.2.3.4" not in keys and "ip:10.0.0.2" not in keys


def test_a_guesser_never_locks_out_people_behind_the_same_address(app):
    """Only unknown values are refused: a valid session from the guesser's address still
    rotates after the allowance is used up."""
    person = from_ip(app, "192.0.2.66")
    signed_up(person, EMAIL)
    person.delete_cookie(ACCESS_COOKIE)  # the next request must rotate its session value
    guesser = from_ip(app, "192.0.2.66")
    for _ in range(6):
        guesser.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(32))
        guesser.get("/api/me")
    guesser.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(32))
    assert_throttled(guesser.get("/api/me"))
    assert person.get("/api/me").status_code == 200
