"""What a person sees in a real Chromium: cookies out of reach of scripts, rotation that never
loses a form or a fetch, revocation, a stolen cookie, hostile User-Agents, the back button."""

from __future__ import annotations

import re

import pytest
from support import PASSWORD, UA_FIREFOX, UA_PHONE

from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from e2e.support import AUTH_COOKIES, SIGN_IN_HEADING, check_page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NEW_PASSWORD = "a brand new passphrase for tests"
MARKUP_UA = 'Evil/1.0 <img src=x onerror=alert("ua")><script>alert("ua")</script>'
BURST = """async () => {
  const responses = await Promise.all(Array.from({length: 6}, () =>
    fetch('/api/me', {credentials: 'same-origin', headers: {Accept: 'application/json'}})));
  return Promise.all(responses.map(async r => ({status: r.status, body: await r.json()})));
}"""
IN_FLIGHT = """() => { window.inFlight = fetch('/api/me', {credentials: 'same-origin',
  headers: {Accept: 'application/json'}}).then(r => r.status); }"""
STORAGE = """() => [localStorage, sessionStorage].flatMap(store =>
  Object.keys(store).map(key => key + '=' + store.getItem(key)))"""


def test_credentials_stay_out_of_reach_of_scripts(people):
    ada = people()
    email = ada.sign_up()
    expect(ada.page).to_have_url(re.compile(r"/account$"))
    jar = ada.context.cookies()
    assert {c["name"] for c in jar} >= set(AUTH_COOKIES)
    assert all(c["httpOnly"] and c["secure"] for c in jar if c["name"] in AUTH_COOKIES)
    document_cookie = ada.page.evaluate("document.cookie")
    assert not any(name in document_cookie for name in AUTH_COOKIES)
    secrets = [ada.cookies()[ACCESS_COOKIE], ada.cookies()[SESSION_COOKIE]]
    stored = ada.page.evaluate(STORAGE)
    assert not any(secret in item for secret in secrets for item in stored)
    assert not any(secret in ada.page.content() for secret in secrets)
    ada.expect_signed_in(email)


def test_a_form_submitted_after_expiry_is_processed(people):
    ada = people()
    email = ada.sign_up()
    ada.go("/account/password")
    ada.page.get_by_label("Current password").fill(PASSWORD)
    ada.page.get_by_label("New password").fill(NEW_PASSWORD)
    handle = ada.cookies()[SESSION_COOKIE]
    ada.drop_access_cookie()
    ada.page.get_by_role("button", name="Change password").click()
    ada.expect_flash("Your password was changed")
    assert ada.cookies()[SESSION_COOKIE] != handle
    ada.go("/account")
    ada.expect_signed_in(email)


def test_bursts_of_fetches_after_expiry_all_succeed(people):
    ada = people()
    email = ada.sign_up()
    ada.wait_past_access_expiry()  # the one real wait of the suite
    for burst in range(3):
        if burst:
            ada.drop_access_cookie()
        replies = ada.page.evaluate(BURST)
        assert [r["status"] for r in replies] == [200] * 6, replies
        assert {r["body"]["email"] for r in replies} == {email}
    ada.go("/sessions")
    expect(ada.page.locator('[data-end-reason="reuse_detected"]')).to_have_count(0)
    ada.go("/account")
    ada.expect_signed_in(email)


def test_a_session_revoked_elsewhere_lands_on_sign_in(people):
    laptop, phone = people(UA_FIREFOX), people(UA_PHONE, viewport="phone")
    email = laptop.sign_up()
    phone.sign_in(email)
    phone_session = phone.current_session_id()
    laptop.go("/sessions")
    row = laptop.page.locator(f'[data-session-id="{phone_session}"]')
    expect(row).to_contain_text("Mobile Safari")
    row.get_by_role("button", name="Sign out").click()
    laptop.expect_flash("That session was signed out")
    expect(row).to_have_count(0)
    phone.go("/account")
    phone.expect_sign_in_page("signed out from another device")
    check_page(phone, "signed-out-after-revocation")
    laptop.go("/account")
    laptop.expect_signed_in(email)


def test_a_stolen_cookie_ends_the_session(people):
    """The thief's copy rotates twice while the victim is away; the victim's next request
    presents a value two generations old: reuse, and the session ends for both."""
    victim, thief = people(), people()
    email = victim.sign_up()
    thief.context.add_cookies(victim.context.cookies())
    for _ in range(2):
        thief.drop_access_cookie()
        thief.go("/account")
        thief.expect_signed_in(email)
    victim.drop_access_cookie()  # back after a while: only the old session value is left
    victim.go("/account")
    victim.expect_sign_in_page("sign-in cookie was used twice")
    thief.go("/account")
    thief.expect_sign_in_page("sign-in cookie was used twice")
    victim.sign_in(email)
    victim.go("/sessions")
    ended = victim.page.locator('[data-end-reason="reuse_detected"]')
    expect(ended).to_have_count(1)
    expect(ended).to_contain_text("Signed out: its sign-in cookie was used twice")
    expect(ended.get_by_role("alert")).to_contain_text(
        "Its sign-in cookie was used again from 127.0.0.1")
    expect(ended.get_by_role("link", name="Change your password")).to_have_attribute(
        "href", "/account/password")
    expect(ended.get_by_role("link", name="Reset it by email")).to_have_attribute(
        "href", "/password/forgot")
    check_page(victim, "signed-in-sessions-after-reuse")


def test_two_tabs_at_expiry_both_stay_signed_in(people):
    """Two tabs of one browser call at the same moment once the access token has gone: both
    are served, the session value converges, and no copy is suspected, round after round."""
    ada = people()
    email = ada.sign_up()
    tabs = [ada.page, ada.context.new_page()]
    tabs[1].goto("/account")
    for _ in range(3):
        ada.drop_access_cookie()
        for tab in tabs:  # both requests leave before either answer comes back
            tab.evaluate(IN_FLIGHT)
        assert [tab.evaluate("() => window.inFlight") for tab in tabs] == [200, 200]
    for tab in tabs:
        tab.reload()
        expect(tab.locator('[data-test="email"]')).to_have_text(email)
    ada.go("/sessions")
    expect(ada.page.locator('[data-end-reason="reuse_detected"]')).to_have_count(0)


def test_markup_in_a_user_agent_is_shown_as_text(people):
    ada, intruder = people(), people(MARKUP_UA)
    email = ada.sign_up()
    intruder.sign_in(email)
    session = intruder.current_session_id()
    ada.go("/sessions")
    row = ada.page.locator(f'[data-session-id="{session}"]')
    expect(row.locator("code")).to_have_text(MARKUP_UA)
    expect(ada.page.locator('img[src="x"], main script')).to_have_count(0)
    assert ada.dialogs == [] and intruder.dialogs == []


def test_signing_out_all_other_sessions_ends_them(people):
    ada, phone, tablet = people(), people(UA_PHONE), people(UA_FIREFOX)
    email = ada.sign_up()
    phone.sign_in(email)
    tablet.sign_in(email)
    ada.go("/sessions")
    expect(ada.page.locator("[data-session-id]")).to_have_count(3)
    ada.page.locator('[data-test="revoke-others"]').click()
    expect(ada.page.locator('[data-test="revoke-others-count"]')).to_have_text(
        "This signs out 2 sessions on 2 devices. This browser stays signed in.")
    ada.page.locator('[data-test="confirm-revoke-others"]').click()
    ada.expect_flash("Signed out 2 other sessions on 2 devices.")
    expect(ada.page.locator("[data-session-id]")).to_have_count(1)
    for other in (phone, tablet):
        other.go("/sessions")
        other.expect_sign_in_page("signed out from another device")
    ada.go("/account")
    ada.expect_signed_in(email)


def test_a_password_change_ends_the_other_sessions(people):
    ada, phone = people(), people(UA_PHONE)
    email = ada.sign_up()
    phone.sign_in(email)
    ada.fill_and_submit("/account/password", {"Current password": PASSWORD,
                                              "New password": NEW_PASSWORD}, "Change password")
    ada.expect_flash("Your password was changed")
    phone.go("/account")
    phone.expect_sign_in_page("Your password was changed")
    phone.sign_in(email, NEW_PASSWORD)
    ada.go("/account")
    ada.expect_signed_in(email)


def test_the_back_button_after_sign_out_shows_nothing_private(people):
    ada = people()
    email = ada.sign_up()
    ada.go("/sessions")
    ada.page.locator('[data-test="sign-out"]').click()
    ada.expect_flash("You have signed out")
    for _ in range(2):
        # "commit": a page restored from the back/forward cache fires no new load event.
        ada.page.go_back(wait_until="commit")
        expect(ada.page.get_by_role("heading", level=1)).to_have_text(SIGN_IN_HEADING)
        expect(ada.page.locator('[data-test="email"], [data-session-id]')).to_have_count(0)
        assert email not in ada.page.content()
    expect(ada.page).to_have_url(re.compile(r"/login\?next=/account$"))
