"""Checklist group 9: failures are throttled per account and per client address, in the
database, with 429 and Retry-After; the client address cannot be forged."""

import secrets

import pytest
from support import PASSWORD, browser, login, register, signed_up, submit

from app import audit
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.models import Throttle, User

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
    assert audit.anonymous_count("throttled") == 1  # anonymous: a counter, not a row
    clock.advance(601)
    assert login(from_ip(app, "198.51.100.99"), EMAIL, PASSWORD).status_code == 302


def test_per_address_limit_stops_password_spraying(app):
    client = from_ip(app, "192.0.2.50")
    for n in range(6):
        assert login(client, f"user{n}@example.com", WRONG).status_code == 401
    assert_throttled(login(client, "someone-else@example.com", WRONG))
    assert login(from_ip(app, "192.0.2.51"), "someone-else@example.com", WRONG).status_code == 401


def test_ipv6_clients_are_limited_by_their_64(app):
    """Rotating through the addresses of one /64 (a single subscriber's) is one client."""
    for n in range(6):
        client = from_ip(app, f"2001:db8:1:2::{n + 1:x}")
        assert login(client, f"user{n}@example.com", WRONG).status_code == 401
    assert_throttled(login(from_ip(app, "2001:db8:1:2:ffff:1:2:3"), "x@example.com", WRONG))
    assert login(from_ip(app, "2001:db8:1:3::1"), "x@example.com", WRONG).status_code == 401
    assert {row.key for row in Throttle.select().where(Throttle.key.startswith("ip:"))} == {
        "ip:2001:db8:1:2::/64", "ip:2001:db8:1:3::/64"}


def test_ipv4_mapped_ipv6_counts_as_the_ipv4_address(app):
    for n in range(6):
        login(from_ip(app, "::ffff:192.0.2.80" if n % 2 else "192.0.2.80"),
              f"user{n}@example.com", WRONG)
    assert_throttled(login(from_ip(app, "192.0.2.80"), "x@example.com", WRONG))


def test_session_guessing_from_one_64_is_one_client(app):
    for n in range(5):
        guesser = from_ip(app, f"2001:db8:9::{n + 1:x}")
        guesser.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(32))
        assert guesser.get("/api/me").status_code == 401
    guesser = from_ip(app, "2001:db8:9::abcd")
    guesser.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(32))
    assert_throttled(guesser.get("/api/me"))


def test_successful_sign_in_resets_the_account_counter(app):
    signed_up(browser(app), EMAIL)
    for _ in range(2):
        for _ in range(2):
            assert login(browser(app), EMAIL, WRONG).status_code == 401
        assert login(browser(app), EMAIL).status_code == 302


def test_current_password_checks_count_against_the_same_limits(app):
    """Here the browser has signed in before, so it is judged by its own attempts."""
    client = browser(app)
    signed_up(client, EMAIL)
    for _ in range(3):
        response = submit(client, "/account/password",
                          {"current_password": WRONG, "new_password": "a brand new passphrase"})
        assert response.status_code == 200
    assert_throttled(submit(client, "/account/password",
                            {"current_password": PASSWORD, "new_password": "a brand new pass"}))


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


def test_an_untrusted_forwarded_for_is_warned_about_once(make_app, caplog):
    """A proxy on the same host with GATEHOUSE_TRUSTED_PROXIES=0 would make every client share
    its address: the operator is told, once per worker."""
    client = from_ip(make_app(), "127.0.0.1")
    for _ in range(3):
        client.get("/login", headers={"X-Forwarded-For": "198.51.100.7"})
    warnings = [r for r in caplog.records
                if r.levelname == "WARNING" and "GATEHOUSE_TRUSTED_PROXIES" in r.getMessage()]
    assert len(warnings) == 1 and "127.0.0.1" in warnings[0].getMessage()


def test_no_warning_without_the_header_or_with_a_trusted_proxy(make_app, caplog):
    from_ip(make_app(), "127.0.0.1").get("/login")
    proxied = from_ip(make_app(GATEHOUSE_TRUSTED_PROXIES=1), "127.0.0.1")
    proxied.get("/login", headers={"X-Forwarded-For": "198.51.100.7"})
    assert not [r for r in caplog.records if "GATEHOUSE_TRUSTED_PROXIES" in r.getMessage()]


def test_registration_is_limited_per_address(make_app):
    app = make_app(GATEHOUSE_REGISTER_LIMIT_IP=3, GATEHOUSE_LOGIN_LIMIT_WINDOW=600)
    client = from_ip(app, "192.0.2.40")
    for n in range(3):
        assert register(client, f"new{n}@example.com").status_code == 302
    assert_throttled(register(client, "one-more@example.com"))
    assert User.select().count() == 3
    assert register(from_ip(app, "192.0.2.41"), "elsewhere@example.com").status_code == 302


def test_an_account_takes_at_most_100_consecutive_failures(make_app, clock):
    """NIST SP 800-63B 5.2.2. The short window lifts every 10 minutes; the cap does not."""
    app = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=10, GATEHOUSE_LOGIN_LIMIT_IP=1000,
                   GATEHOUSE_LOGIN_LIMIT_WINDOW=600)
    signed_up(browser(app), EMAIL)
    failures = 0
    for window in range(12):
        for n in range(10):
            status = login(from_ip(app, f"198.51.{window}.{n}"), EMAIL, WRONG).status_code
            failures += status == 401
        clock.advance(601)
    assert failures == 100
    assert_throttled(login(from_ip(app, "198.51.99.1"), EMAIL), window=30 * 24 * 3600)


def test_a_success_starts_the_count_of_consecutive_failures_again(make_app, clock):
    app = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=10, GATEHOUSE_LOGIN_LIMIT_IP=1000,
                   GATEHOUSE_LOGIN_LIMIT_WINDOW=600)
    signed_up(browser(app), EMAIL)
    for window in range(9):
        for n in range(10):
            login(from_ip(app, f"198.51.{window}.{n}"), EMAIL, WRONG)
        clock.advance(601)
    assert login(from_ip(app, "198.51.99.1"), EMAIL).status_code == 302
    for n in range(10):
        assert login(from_ip(app, f"198.51.100.{n}"), EMAIL, WRONG).status_code == 401


def test_a_successful_sign_in_gives_the_address_its_attempt_back(make_app):
    """Attempts are counted before the password is checked; people signing in from a shared
    address do not use up its allowance for failures."""
    app = make_app(GATEHOUSE_LOGIN_LIMIT_IP=3)
    client = from_ip(app, "192.0.2.60")
    signed_up(client, EMAIL)
    for _ in range(5):
        assert login(from_ip(app, "192.0.2.60"), EMAIL).status_code == 302
    assert Throttle.get(Throttle.key == "ip:192.0.2.60").failures == 0
