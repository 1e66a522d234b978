"""Two-step sign-in with an authenticator app: set up by a correct code, recovery codes shown
once, a password sign-in held at a code page before any session exists, each code accepted
once, codes throttled like passwords, a reset that keeps it on, and turning it off."""

from __future__ import annotations

import pyotp
import pytest
from support import PASSWORD, UA_PHONE, browser, csrf_token, login, page, signed_up, submit

from app import links
from app.carriers import SESSION_COOKIE
from app.models import LoginSession, PendingSignIn, RecoveryCode, SecurityEvent, TwoFactor, User


def set_up(client, clock) -> tuple[pyotp.TOTP, list[str]]:
    """Turn two-step sign-in on as a person would: the key off the page, a code from it (for
    the app's clock, which a test moves by hand)."""
    html = page(submit(client, "/account/two-factor/setup", {},
                       form_page="/account/two-factor"))
    assert html.select_one("img.qr")["src"].startswith("data:image/svg+xml")
    totp = pyotp.TOTP(html.select_one('[data-test="totp-key"]').get_text().replace(" ", ""))
    response = submit(client, "/account/two-factor/confirm", {"code": totp.at(clock())},
                      form_page="/account/two-factor")
    codes = [c.get_text() for c in page(response).select('[data-test="recovery-codes"] code')]
    return totp, codes


def at(totp: pyotp.TOTP, clock, steps: int = 0) -> str:
    """The app's code for the test clock's time (plus ``steps`` periods)."""
    return totp.at(clock() + steps * 30)


@pytest.fixture
def ada_two_step(ada, clock):
    totp, codes = set_up(ada, clock)
    clock.advance(30)  # the set-up code's step is used; sign-ins use the next ones
    submit(ada, "/logout", {}, form_page="/account")
    return ada, totp, codes


def enter_code(client, code: str):
    return submit(client, "/login/code", {"code": code})


def signed_in_as(client) -> str | None:
    response = client.get("/api/me")
    return response.get_json()["email"] if response.status_code == 200 else None


def test_setting_up_shows_ten_codes_once_and_stores_them_hashed(ada, clock):
    totp, codes = set_up(ada, clock)
    assert len(codes) == 10 == len(set(codes))
    assert TwoFactor.get().confirmed_at is not None
    stored = {row.code_hash for row in RecoveryCode.select()}
    assert not stored & set(codes) and len(stored) == 10
    assert SecurityEvent.select().where(SecurityEvent.kind == "two_step_on").exists()
    assert page(ada.get("/account/two-factor")).select_one(
        '[data-test="recovery-codes"]') is None


def test_a_wrong_code_does_not_turn_it_on(ada):
    submit(ada, "/account/two-factor/setup", {}, form_page="/account/two-factor")
    response = submit(ada, "/account/two-factor/confirm", {"code": "000000"},
                      form_page="/account/two-factor")
    assert response.status_code == 400 and TwoFactor.get().confirmed_at is None


def test_a_password_sign_in_stops_at_the_code_page_before_any_session(ada_two_step, clock):
    ada, totp, _ = ada_two_step
    sessions = LoginSession.select().count()
    response = login(ada)
    assert response.headers["Location"].endswith("/login/code")
    assert ada.get_cookie(SESSION_COOKIE) is None and LoginSession.select().count() == sessions
    assert signed_in_as(ada) is None
    response = enter_code(ada, at(totp, clock))
    assert response.status_code == 302 and signed_in_as(ada) == "ada@example.com"
    assert not PendingSignIn.select().exists()


def test_a_wrong_code_is_refused_and_recorded(ada_two_step):
    ada, _, _ = ada_two_step
    login(ada)
    response = enter_code(ada, "123456")
    assert response.status_code == 401 and signed_in_as(ada) is None
    assert SecurityEvent.select().where(SecurityEvent.kind == "two_step_failed").exists()


def test_a_code_is_accepted_once(ada_two_step, app, clock):
    ada, totp, _ = ada_two_step
    code = at(totp, clock)
    login(ada)
    assert enter_code(ada, code).status_code == 302
    phone = browser(app, UA_PHONE)
    login(phone)
    assert enter_code(phone, code).status_code == 401  # the same window, the same code
    assert signed_in_as(phone) is None
    clock.advance(30)
    assert enter_code(phone, at(totp, clock)).status_code == 302


def test_an_earlier_code_after_a_later_one_is_refused(ada_two_step, app, clock):
    ada, totp, _ = ada_two_step
    login(ada)
    assert enter_code(ada, at(totp, clock, +1)).status_code == 302  # a fast phone's clock
    phone = browser(app, UA_PHONE)
    login(phone)
    assert enter_code(phone, at(totp, clock)).status_code == 401


def test_a_recovery_code_signs_in_once(ada_two_step, app):
    ada, _, codes = ada_two_step
    login(ada)
    assert enter_code(ada, codes[0].upper().replace("-", " ")).status_code == 302
    used = SecurityEvent.get(SecurityEvent.kind == "recovery_code_used")
    assert used.detail == "9"
    phone = browser(app, UA_PHONE)
    login(phone)
    assert enter_code(phone, codes[0]).status_code == 401 and signed_in_as(phone) is None


def test_codes_are_throttled_per_account(make_app, clock):
    client = browser(make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=3))
    signed_up(client)
    totp, _ = set_up(client, clock)
    clock.advance(30)
    submit(client, "/logout", {}, form_page="/account")
    login(client)
    for _ in range(3):
        assert enter_code(client, "999999").status_code == 401
    assert enter_code(client, at(totp, clock)).status_code == 429
    assert signed_in_as(client) is None


def test_the_held_sign_in_belongs_to_its_browser_and_expires(ada_two_step, app, clock):
    ada, totp, _ = ada_two_step
    login(ada)
    thief = browser(app, UA_PHONE)
    response = thief.get("/login/code")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    clock.advance(301)
    response = ada.get("/login/code")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert signed_in_as(ada) is None


def test_a_password_reset_keeps_it_on_and_still_asks_for_a_code(ada_two_step, app, clock):
    ada, totp, _ = ada_two_step
    user = User.get()
    token = links.issue(links.RESET, user.id, ttl=600, now=clock())
    response = submit(ada, "/password/reset", {"token": token, "act": "1",  # its button
                                               "new_password": "another long and fresh passphrase"})
    assert response.headers["Location"].endswith("/login/code")
    assert signed_in_as(ada) is None and TwoFactor.get().confirmed_at is not None
    assert enter_code(ada, at(totp, clock)).status_code == 302
    session = LoginSession.select().order_by(LoginSession.id.desc()).get()
    assert session.start_method == "reset" and signed_in_as(ada) == "ada@example.com"


def test_turning_it_off_needs_a_recent_sign_in(ada_two_step, app, clock):
    ada, totp, _ = ada_two_step
    login(ada)
    enter_code(ada, at(totp, clock))
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    asked = submit(ada, "/account/two-factor/off", {}, form_page="/account/two-factor")
    assert page(asked).h1.get_text() == "Confirm it's you" and TwoFactor.select().exists()
    token = csrf_token(asked)
    response = ada.post("/account/two-factor/off",
                        data={"csrf_token": token, "password": "not the password, sorry"})
    assert response.status_code == 401 and TwoFactor.select().exists()
    response = ada.post("/account/two-factor/off", data={"csrf_token": token,
                                                          "password": PASSWORD})
    assert response.status_code == 302 and not TwoFactor.select().exists()
    assert not RecoveryCode.select().exists()
    assert SecurityEvent.select().where(SecurityEvent.kind == "two_step_off").exists()
    submit(ada, "/logout", {}, form_page="/account")
    assert login(ada).headers["Location"].endswith("/account")  # no code asked any more


def test_setting_up_needs_a_recent_sign_in(ada, app, clock):
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    asked = submit(ada, "/account/two-factor/setup", {}, form_page="/account/two-factor")
    assert page(asked).h1.get_text() == "Confirm it's you"
    assert not TwoFactor.select().exists()


def test_codes_are_throttled_per_address_across_accounts(make_app, clock):
    app = make_app(GATEHOUSE_LOGIN_LIMIT_IP=3)
    ada, bob = browser(app), browser(app, UA_PHONE)  # both from 203.0.113.7
    signed_up(ada)
    signed_up(bob, "bob@example.com")
    set_up(ada, clock)
    bob_totp, _ = set_up(bob, clock)
    clock.advance(30)
    for client in (ada, bob):
        submit(client, "/logout", {}, form_page="/account")
    login(ada)
    login(bob, "bob@example.com")
    assert [enter_code(ada, "999999").status_code for _ in range(2)] == [401, 401]
    assert enter_code(bob, "999999").status_code == 401
    assert enter_code(bob, at(bob_totp, clock)).status_code == 429
