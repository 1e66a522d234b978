"""Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): a browser
that has signed in to an account before is judged by its own failures there, so failing from
elsewhere cannot lock the owner out; untrusted browsers share the account's limit."""

import pytest
from support import browser, cookie, login, signed_up, submit

from app.carriers import DEVICE_COOKIE
from app.models import KnownDevice

EMAIL = "ada@example.com"
WRONG = "not the password at all"


@pytest.fixture
def app(make_app):
    return make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=3, GATEHOUSE_LOGIN_LIMIT_IP=1000,
                    GATEHOUSE_LOGIN_LIMIT_WINDOW=600)


def from_ip(app, address: str):
    client = browser(app)
    client.environ_base["REMOTE_ADDR"] = address
    return client


def owner_signed_out(app):
    """The owner's browser: signed in once (so it is known), then signed out."""
    owner = from_ip(app, "198.51.100.1")
    signed_up(owner, EMAIL)
    submit(owner, "/logout", {}, form_page="/account")
    return owner


def test_the_device_cookie_is_set_once_and_kept_through_sign_out(app):
    owner = owner_signed_out(app)
    device = cookie(owner, DEVICE_COOKIE)
    assert device and len(device) == 43
    again = login(owner)
    assert again.status_code == 302
    assert not [h for h in again.headers.getlist("Set-Cookie") if h.startswith(DEVICE_COOKIE)]
    assert cookie(owner, DEVICE_COOKIE) == device
    assert KnownDevice.select().count() == 1


def test_failures_from_elsewhere_do_not_lock_out_a_known_browser(app):
    owner = owner_signed_out(app)
    for n in range(4):
        login(from_ip(app, f"203.0.113.{n}"), EMAIL, WRONG)
    assert login(from_ip(app, "203.0.113.99"), EMAIL).status_code == 429  # untrusted: shared
    assert login(owner, EMAIL).status_code == 302


def test_a_known_browser_is_judged_by_its_own_failures(app):
    owner = owner_signed_out(app)
    for _ in range(3):
        assert login(owner, EMAIL, WRONG).status_code == 401
    assert login(owner, EMAIL).status_code == 429
    assert login(from_ip(app, "203.0.113.5"), EMAIL).status_code == 302  # not the account's


def test_a_device_known_to_another_account_is_a_stranger_here(app):
    owner_signed_out(app)
    bob = from_ip(app, "198.51.100.2")
    signed_up(bob, "bob@example.com")
    for n in range(3):
        login(from_ip(app, f"203.0.113.{n}"), EMAIL, WRONG)
    assert login(bob, EMAIL).status_code == 429


@pytest.mark.parametrize("value", ["forged", "A" * 43, "A" * 42 + "\x00"])
def test_a_made_up_device_cookie_earns_no_trust(app, value):
    owner_signed_out(app)
    for n in range(3):
        login(from_ip(app, f"203.0.113.{n}"), EMAIL, WRONG)
    stranger = from_ip(app, "203.0.113.50")
    stranger.set_cookie(DEVICE_COOKIE, value)
    assert login(stranger, EMAIL).status_code == 429


def test_the_device_cookie_alone_authenticates_nothing(app):
    owner = owner_signed_out(app)
    assert owner.get("/api/me").status_code == 401
    assert owner.get("/account").status_code == 302
