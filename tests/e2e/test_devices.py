"""The sessions page by device, in Chromium at 1280 and 390 px: one card per browser across
sign-ins, naming a device, a timeline that shows a refused use after revocation, times in the
reader's own time zone on hover and keyboard focus, and "sign out all others" counted first."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from support import UA_PHONE

from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from e2e.support import TIMEOUT_MS, VIEWPORTS, Person, check_page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def sign_in_again(person: Person, email: str) -> None:
    """The browser forgets its sign-in (not its device cookie) and signs in anew."""
    person.context.clear_cookies(name=ACCESS_COOKIE)
    person.context.clear_cookies(name=SESSION_COOKIE)
    person.sign_in(email)


def device_card(person: Person, name: str):
    return person.page.locator("[data-device]").filter(
        has=person.page.get_by_role("heading", name=name, exact=True))


def test_sessions_are_grouped_by_device_and_a_device_can_be_named(people):
    ada, phone = people(), people(UA_PHONE)
    email = ada.sign_up()
    sign_in_again(ada, email)
    phone.sign_in(email)
    ada.go("/sessions")
    expect(ada.page.locator("[data-device]")).to_have_count(2)
    this = ada.page.locator(".device-current")
    expect(this.locator("[data-session-id]")).to_have_count(2)
    expect(this.locator('[data-current="true"]')).to_have_count(1)
    expect(this.get_by_text("This device", exact=True)).to_be_visible()
    check_page(ada, "sessions-by-device")

    card = device_card(ada, "Mobile Safari 17 on iOS")
    card.get_by_text("Rename").click()
    card.get_by_label("Name for this device").fill("Ada's <phone>")
    card.get_by_role("button", name="Save name").click()
    ada.expect_flash("This device is now called “Ada's <phone>”.")
    named = device_card(ada, "Ada's <phone>")
    expect(named.locator(".device-parsed")).to_have_text("Mobile Safari 17 on iOS")
    sign_in_again(phone, email)  # the name stays with the browser
    ada.go("/sessions")
    expect(device_card(ada, "Ada's <phone>").locator("[data-session-id]")).to_have_count(2)
    check_page(ada, "sessions-named")


def test_the_timeline_shows_a_use_refused_after_revocation(people):
    ada, phone = people(), people(UA_PHONE)
    email = ada.sign_up()
    phone.sign_in(email)
    target = phone.current_session_id()
    ada.go("/sessions")
    ada.page.locator(f'[data-session-id="{target}"]').get_by_role("button",
                                                                 name="Sign out").click()
    ada.expect_flash("That session was signed out")
    phone.go("/account")
    phone.expect_sign_in_page("signed out from another device")
    ada.go("/sessions")
    ended = ada.page.locator(f'[data-ended-session-id="{target}"]')
    ended.get_by_role("link", name=re.compile("What this session did")).click()
    refused = ada.page.locator('[data-event="refused_use"]')
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text(re.compile(
        r"A request with this session's cookie was refused .+ after you signed it out, "
        r"from 127\.0\.0\.1 \(this network\)"))
    expect(ada.page.locator('[data-event="revoked"]')).to_contain_text("Signed out by you")
    check_page(ada, "session-timeline")


def test_times_show_the_readers_own_time_zone_on_hover_and_keyboard_focus(chromium, site):
    context = chromium.new_context(base_url=site.url, viewport=VIEWPORTS["desktop"],
                                   timezone_id="Asia/Tokyo", locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    person = Person(context, context.new_page())
    try:
        person.sign_up()
        person.go("/sessions")
        first = person.page.locator("time[data-moment]").first
        utc = datetime.fromisoformat(first.get_attribute("datetime").replace("Z", "+00:00"))
        tokyo = (utc + timedelta(hours=9)).strftime("%H:%M:%S")
        tip = person.page.locator(f"#{first.get_attribute('aria-describedby')}")
        expect(tip).to_be_hidden()
        expect(first).to_have_text("just now")
        first.hover()
        expect(tip).to_be_visible()
        expect(tip).to_contain_text(tokyo)
        expect(tip).to_contain_text(re.compile("JST|Japan|GMT\\+9"))
        person.page.mouse.move(0, 0)
        expect(tip).to_be_hidden()
        for _ in range(60):  # from the top of the page, by keyboard alone
            person.page.keyboard.press("Tab")
            if person.page.evaluate("document.activeElement.matches('time[data-moment]')"):
                break
        focused = person.page.locator("time[data-moment]:focus")
        expect(focused).to_have_count(1)
        expect(person.page.locator(f"#{focused.get_attribute('aria-describedby')}")).to_be_visible()
        assert not person.problems
    finally:
        context.close()


def test_sign_out_all_others_says_how_many_first(people):
    ada, phone, laptop = people(), people(UA_PHONE), people()
    email = ada.sign_up()
    phone.sign_in(email)
    sign_in_again(phone, email)
    laptop.sign_in(email)
    ada.go("/sessions")
    ada.page.locator('[data-test="revoke-others"]').click()
    expect(ada.page.locator('[data-test="revoke-others-count"]')).to_have_text(
        "This signs out 3 sessions on 2 devices. This browser stays signed in.")
    check_page(ada, "revoke-others")
    ada.page.get_by_role("button", name="Sign out 3 sessions").click()
    ada.expect_flash("Signed out 3 other sessions on 2 devices.")
    expect(ada.page.locator("[data-session-id]")).to_have_count(1)
    expect(ada.page.locator('[data-test="revoke-others"]')).to_have_count(0)
    ada.go("/sessions/revoke-others")
    expect(ada.page.locator('[data-test="revoke-others-count"]')).to_have_text(
        "No other session is signed in: only this browser is.")
