"""What the trial asked for, in Chromium at both widths: the password asked again once, on a
page of its own; the 429 page's wait in words; who is signed in at the sign-in page; "show
password"; a header of one height signed in and out."""

from __future__ import annotations

import re
import time

import pytest
from support import CHEAP_ARGON2, PASSWORD, SECRET, UA_PHONE

from app import create_app, liveness
from app.db import database, write_transaction
from app.models import LoginSession, User
from app.words import in_words
from e2e.support import VIEWPORTS, Person, check_page, expect, new_email

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WRONG = "this is not the password at all"


def age_password_entry(site, email: str) -> None:
    """As if ``email`` had typed the password an hour ago: what the re-authentication window
    measures (the server's clock is real; this moves the record, not time). Written through
    an app of the test's own, and announced as the app announces its own changes, so that
    the site's workers have forgotten what they remembered of these sessions when it returns."""
    app = create_app({"TESTING": True, "SECRET_KEY": SECRET, "GATEHOUSE_EMAIL_VERIFICATION":
                      "off", "DATABASE_URL": site.env["DATABASE_URL"], **CHEAP_ARGON2})
    try:
        with app.app_context(), database.connection_context(), write_transaction():
            user_id = User.get(User.email == email).id
            LoginSession.update(authenticated_at=LoginSession.authenticated_at - 3600).where(
                LoginSession.user == user_id).execute()
            liveness.announce(user_id=user_id, now=time.time())
    finally:
        liveness.close(app)


def expect_field_error(person: Person, label: str, message: str) -> None:
    box = person.page.get_by_label(label, exact=True)
    expect(box).to_have_attribute("aria-invalid", "true")
    error = person.page.locator(f"#{box.get_attribute('aria-describedby').split()[-1]}")
    expect(error).to_have_text(message)


def test_the_password_is_asked_once_on_its_own_page(people, site):
    ada, phone = people(), people(UA_PHONE)
    email = ada.sign_up()
    phone.sign_in(email)
    phone_session = phone.current_session_id()
    age_password_entry(site, email)
    ada.go("/sessions")
    expect(ada.page.locator('main input[type="password"]')).to_have_count(0)
    ada.page.locator(f'[data-session-id="{phone_session}"]').get_by_role(
        "button", name="Sign out").click()
    expect(ada.page.get_by_role("heading", level=1)).to_have_text("Confirm it's you")
    check_page(ada, "reauth")
    ada.page.get_by_label("Your password", exact=True).fill(WRONG)
    ada.page.get_by_role("button", name="Confirm", exact=True).click()
    expect_field_error(ada, "Your password", "That password is not right.")
    check_page(ada, "reauth-wrong-password")
    phone.go("/account")
    phone.expect_signed_in(email)

    ada.page.get_by_label("Your password", exact=True).fill(PASSWORD)
    ada.page.get_by_role("button", name="Confirm", exact=True).click()
    ada.expect_flash("That session was signed out")
    phone.go("/account")
    phone.expect_sign_in_page("signed out from another device")


def test_signing_out_this_device_never_asks(people, site):
    ada = people()
    email = ada.sign_up()
    age_password_entry(site, email)
    ada.go("/sessions")
    ada.page.get_by_role("button", name="Sign out this device").click()
    expect(ada.page.get_by_role("heading", level=1)).to_have_text("Sign in")
    ada.go("/account")
    expect(ada.page).to_have_url(re.compile(r"/login\?next=/account$"))


def test_the_429_page_says_how_long_to_wait_and_leads_back(people):
    visitor = people()
    email = new_email("nobody")  # no account: throttled all the same
    for _ in range(10):
        visitor.fill_and_submit("/login", {"Email": email, "Password": WRONG}, "Sign in")
    visitor.page.get_by_label("Email", exact=True).fill(email)
    visitor.page.get_by_label("Password", exact=True).fill(WRONG)
    with visitor.page.expect_response(re.compile(r"/login$")) as answer:
        visitor.page.get_by_role("button", name="Sign in", exact=True).click()
    assert answer.value.status == 429
    wait = in_words(int(answer.value.headers["retry-after"]))
    expect(visitor.page.get_by_role("heading")).to_have_count(1)
    expect(visitor.page.get_by_role("heading", level=1)).to_have_text("Too many attempts")
    expect(visitor.page.locator('[data-test="error-message"]')).to_contain_text(
        f"Try again in {wait}.")
    check_page(visitor, "too-many-attempts")
    visitor.page.get_by_role("link", name="Back to sign in").click()
    expect(visitor.page).to_have_url(re.compile(r"/login$"))


def test_signed_in_people_opening_sign_in_see_who_they_are(people):
    ada = people()
    email = ada.sign_up()
    for path in ("/login", "/register"):
        ada.go(path)
        expect(ada.page.get_by_role("heading", level=1)).to_have_text("You are signed in")
        expect(ada.page.locator('[data-test="signed-in-as"]')).to_have_text(email)
        check_page(ada, f"signed-in-at{path.replace('/', '-')}")
    ada.go("/login")
    ada.page.get_by_role("button", name="Sign out and sign in as someone else").click()
    ada.expect_flash("You have signed out")
    expect(ada.page.get_by_role("heading", level=1)).to_have_text("Sign in")
    ada.go("/sessions")
    expect(ada.page.get_by_role("heading", level=1)).to_have_text("Sign in to continue")


@pytest.mark.parametrize(("path", "labels"), [
    ("/register", ["Password"]),
    ("/login", ["Password"]),
    ("/account/password", ["Current password", "New password"]),
])
def test_show_password_toggles_each_field(people, path, labels):
    person = people()
    if path.startswith("/account"):
        person.sign_up()
    person.go(path)
    for label in labels:
        box = person.page.get_by_label(label, exact=True)
        box.fill("what I typed here")
        toggle = person.page.get_by_role("button", name=f"Show {label.lower()}", exact=True)
        expect(toggle).to_have_attribute("aria-pressed", "false")
        toggle.click()
        expect(box).to_have_attribute("type", "text")
        expect(toggle).to_have_attribute("aria-pressed", "true")
        toggle.press("Enter")  # the keyboard works too
        expect(box).to_have_attribute("type", "password")
        expect(toggle).to_have_attribute("aria-pressed", "false")
    person.page.get_by_role("button", name=f"Show {labels[0].lower()}", exact=True).click()
    check_page(person, f"show-password{path.replace('/', '-')}")


def header_heights(person: Person) -> dict[str, float]:
    heights = {}
    for name, viewport in VIEWPORTS.items():
        person.page.set_viewport_size(viewport)
        heights[name] = person.page.locator("header.site-header").bounding_box()["height"]
    return heights


def test_the_header_has_one_height_signed_in_and_out(people):
    person = people()
    person.go("/")
    signed_out = header_heights(person)
    person.sign_up()
    person.go("/")
    assert header_heights(person) == signed_out
