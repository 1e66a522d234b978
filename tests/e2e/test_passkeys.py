"""Passkeys and two-step sign-in in Chromium, with its virtual authenticator (the DevTools
protocol's WebAuthn domain: CTAP2, internal, resident keys, user verification) standing in for
a phone's or laptop's, and pyotp for the authenticator app."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from support import PASSWORD, UA_PHONE

from e2e.support import Person, check_page, expect
from e2e.test_prompts import age_password_entry

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REFUSED = re.compile(r"No passkey was used|That passkey was not accepted")


class Authenticator:
    """Chromium's virtual authenticator, attached to one person's page."""

    def __init__(self, person: Person, verified: bool = True) -> None:
        self.cdp = person.context.new_cdp_session(person.page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.id = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": verified,
            "automaticPresenceSimulation": True}})["authenticatorId"]

    def verifies(self, verified: bool) -> None:
        self.cdp.send("WebAuthn.setUserVerified", {"authenticatorId": self.id,
                                                   "isUserVerified": verified})

    def credentials(self) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials",
                             {"authenticatorId": self.id})["credentials"]


def add_passkey(person: Person, name: str, screenshot: bool = False) -> None:
    person.go("/account/passkeys")
    person.page.get_by_role("button", name="Add a passkey").click()
    expect(person.page.get_by_role("heading", level=1)).to_have_text("Add a passkey")
    person.page.get_by_label("Name", exact=True).fill(name)
    if screenshot:
        check_page(person, "passkey-new")
    person.page.get_by_role("button", name="Create the passkey").click()
    person.expect_flash(f"Passkey \u201c{name}\u201d added")


def sign_out(person: Person) -> None:
    person.page.locator('[data-test="sign-out"]').click()
    expect(person.page.get_by_role("heading", level=1)).to_have_text("Sign in")


def passkey_button(person: Person):
    return person.page.locator('[data-test="passkey-sign-in"]')


def test_a_passkey_added_signs_in_reauthenticates_and_once_removed_is_refused(people, site):
    ada = people(host="localhost")
    email = ada.sign_up()
    key = Authenticator(ada)
    add_passkey(ada, "Laptop", screenshot=True)
    (row,) = ada.page.locator("[data-passkey-id]").all()
    expect(row.get_by_role("heading")).to_have_text("Laptop")
    assert len(key.credentials()) == 1 and key.credentials()[0]["isResidentCredential"]
    check_page(ada, "passkeys")

    # The button, with the conditional request the page started set aside.
    key.verifies(False)
    sign_out(ada)
    passkey_button(ada).click()
    expect(ada.page.locator("[data-passkey-status]")).to_have_text(REFUSED)
    expect(ada.page.locator('[data-test="email"]')).to_have_count(0)
    key.verifies(True)
    passkey_button(ada).click()
    ada.expect_signed_in(email)
    ada.go("/sessions")
    expect(ada.page.locator('[data-current="true"] [data-field="method"]')).to_have_text(
        "with a passkey")

    # Re-authentication with the passkey, before removing it.
    age_password_entry(site, email)
    ada.go("/account/passkeys")
    ada.page.get_by_role("button", name="Remove").click()
    expect(ada.page.get_by_role("heading", level=1)).to_have_text("Confirm it's you")
    expect(ada.page.get_by_role("button", name="Confirm with a passkey")).to_be_visible()
    check_page(ada, "reauth-passkey")
    ada.page.get_by_role("button", name="Confirm with a passkey").click()
    ada.expect_flash("Passkey \u201cLaptop\u201d removed")
    expect(ada.page.locator("[data-passkey-id]")).to_have_count(0)

    # The authenticator still holds it; the site no longer accepts it, offered in the autofill
    # as the sign-in page loads (Chromium's virtual environment answers that at once) or from
    # the button.
    ada.page.locator('[data-test="sign-out"]').click()
    expect(ada.page.locator('[data-flash="error"]')).to_contain_text(
        "That passkey was not accepted")
    with ada.page.expect_navigation():
        passkey_button(ada).click()
    expect(ada.page.locator('[data-flash="error"]')).to_contain_text(
        "That passkey was not accepted")
    expect(ada.page.locator('[data-test="email"]')).to_have_count(0)


def test_autofill_offers_the_passkey_in_the_email_field(people):
    ada = people(host="localhost")
    email = ada.sign_up()
    Authenticator(ada)
    add_passkey(ada, "Phone")
    # The sign-in page asks for a conditional request as it loads; Chromium's virtual
    # environment answers it with the authenticator's passkey, as picking it from the autofill
    # list would, and the page posts it: nobody presses a button.
    with ada.page.expect_request(lambda r: r.url.endswith("/login/passkey")) as posted:
        ada.page.locator('[data-test="sign-out"]').click()
    assert posted.value.method == "POST"
    ada.expect_signed_in(email)


def test_a_second_accounts_passkey_reaches_only_that_account(people):
    ada, bob = people(host="localhost"), people(UA_PHONE, host="localhost")
    ada_email, bob_email = ada.sign_up("ada"), bob.sign_up("bob")
    Authenticator(ada), Authenticator(bob)
    add_passkey(ada, "Ada's laptop")
    add_passkey(bob, "Bob's phone")
    expect(bob.page.locator("[data-passkey-id]")).to_have_count(1)
    for person, email in ((ada, ada_email), (bob, bob_email)):
        # Signed out, each browser's autofill signs in with its own passkey at once.
        person.page.locator('[data-test="sign-out"]').click()
        person.expect_signed_in(email)
        person.go("/sessions")
        expect(person.page.locator('[data-current="true"] [data-field="method"]')).to_have_text(
            "with a passkey")


def test_at_the_ip_address_the_passkeys_page_says_where_they_work(people, site):
    ada = people()
    ada.sign_up()
    ada.go("/account/passkeys")
    note = ada.page.locator('[data-test="passkeys-elsewhere"]')
    expect(note).to_contain_text(f"http://localhost:{site.port}")
    expect(ada.page.get_by_role("button", name="Add a passkey")).to_have_count(0)
    check_page(ada, "passkeys-at-ip")


def test_two_step_sign_in_end_to_end(people):
    ada = people()
    email = ada.sign_up()
    ada.go("/account/two-factor")
    check_page(ada, "two-factor-off")
    ada.page.get_by_role("button", name="Set up an authenticator app").click()
    key = ada.page.locator('[data-test="totp-key"]').inner_text().replace(" ", "")
    check_page(ada, "two-factor-setup")
    totp = pyotp.TOTP(key)
    first = totp.now()
    ada.page.get_by_label("Code from the app", exact=True).fill(first)
    ada.page.get_by_role("button", name="Turn on two-step sign-in").click()
    codes = ada.page.locator('[data-test="recovery-codes"] code')
    expect(codes).to_have_count(10)
    recovery = codes.first.inner_text()
    check_page(ada, "recovery-codes")
    ada.page.get_by_role("link", name="I have saved them").click()
    expect(ada.page.locator('[data-test="two-step-state"]')).to_have_attribute("data-on", "true")

    sign_out(ada)
    ada.fill_and_submit("/login", {"Email": email, "Password": PASSWORD}, "Sign in")
    expect(ada.page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    check_page(ada, "second-step")
    ada.page.get_by_label("Code", exact=True).fill(first)  # the set-up's own: used
    ada.page.get_by_role("button", name="Sign in").click()
    expect(ada.page.locator(".error")).to_contain_text("already used")
    # The next period's code: later than any accepted, and within the one period of drift
    # allowed, whenever this runs.
    ada.page.get_by_label("Code", exact=True).fill(totp.at(time.time() + 30))
    ada.page.get_by_role("button", name="Sign in").click()
    ada.expect_signed_in(email)

    sign_out(ada)
    ada.fill_and_submit("/login", {"Email": email, "Password": PASSWORD}, "Sign in")
    ada.page.get_by_label("Code", exact=True).fill(recovery)
    ada.page.get_by_role("button", name="Sign in").click()
    ada.expect_signed_in(email)
