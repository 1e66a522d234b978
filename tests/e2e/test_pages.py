"""Every page, signed out and signed in, at desktop and phone width: screenshots for a reviewer,
axe-core for everyone, and the markup that password managers and keyboards rely on."""

from __future__ import annotations

import pytest
from support import UA_PHONE

from e2e.support import Person, check_page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIGNED_OUT = {"home": "/", "sign-in": "/login", "register": "/register",
              "not-found": "/no-such-page"}
SIGNED_IN = {"home": "/", "account": "/account", "password": "/account/password",
             "sessions": "/sessions", "not-found": "/no-such-page"}
AUTOCOMPLETE = {
    # "webauthn": the sign-in field also offers passkeys in the browser's autofill.
    "/login": {"Email": "username webauthn", "Password": "current-password"},
    "/register": {"Email": "username", "Password": "new-password"},
    "/account/password": {"Current password": "current-password",
                          "New password": "new-password"},
}


def assert_page_structure(person: Person) -> None:
    """Landmarks and one heading that says where the person is."""
    page = person.page
    expect(page.get_by_role("banner")).to_have_count(1)
    expect(page.get_by_role("main")).to_have_count(1)
    expect(page.get_by_role("contentinfo")).to_have_count(1)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_count(1)


def visit_all(person: Person, pages: dict[str, str], state: str) -> None:
    for name, path in pages.items():
        person.go(path)
        assert_page_structure(person)
        check_page(person, f"{state}-{name}")


def test_signed_out_pages(people):
    visitor = people()
    visit_all(visitor, SIGNED_OUT, "signed-out")


def test_signed_in_pages(people):
    """The sessions page with another live device and an ended session, so every part of it
    is on show."""
    ada, phone, old = people(), people(UA_PHONE), people()
    email = ada.sign_up()
    phone.sign_in(email)
    old.sign_in(email)
    old_session = old.current_session_id()
    ada.go("/sessions")
    ada.page.locator(f'[data-session-id="{old_session}"]').get_by_role(
        "button", name="Sign out").click()
    ada.expect_flash("That session was signed out")
    check_page(ada, "signed-in-sessions-flash")
    visit_all(ada, SIGNED_IN, "signed-in")


@pytest.mark.parametrize(("path", "fields", "button", "field", "message"), [
    ("/login", {"Email": "nobody@example.com", "Password": "not the right one at all"},
     "Sign in", "Password", "don't match an account"),
    ("/register", {"Email": "not an address", "Password": "short"},
     "Create account", "Email", "valid email address"),
    ("/register", {"Email": "bea@example.com", "Password": "short"},
     "Create account", "Password", "15"),
    ("/account/password", {"Current password": "wrong wrong wrong wrong",
                           "New password": "another fine passphrase"},
     "Change password", "Current password", "not your current password"),
], ids=["sign-in", "register-email", "register-password", "password"])
def test_errors_are_tied_to_their_fields(people, path, fields, button, field, message):
    person = people()
    if path.startswith("/account"):
        person.sign_up()
    person.fill_and_submit(path, fields, button)
    box = person.page.get_by_label(field, exact=True)
    expect(box).to_have_attribute("aria-invalid", "true")
    described_by = box.get_attribute("aria-describedby").split()
    error = person.page.locator(f"#{described_by[-1]}")
    expect(error).to_be_visible()
    expect(error).to_contain_text(message)
    check_page(person, f"error-{path.strip('/').replace('/', '-')}-{field.lower()}"
                       .replace(" ", "-"))


def test_password_managers_find_their_fields(people):
    person = people()
    for path, fields in AUTOCOMPLETE.items():
        if path.startswith("/account"):
            person.sign_up()
        person.go(path)
        for label, autocomplete in fields.items():
            box = person.page.get_by_label(label, exact=True)
            expect(box).to_have_attribute("autocomplete", autocomplete)
            expect(box).to_have_attribute("type", "email" if label == "Email" else "password")


def test_keyboard_focus_is_visible(people):
    visitor = people(viewport="phone")
    page = visitor.go("/login")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, "the skip link stays off-screen"
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "email":
            break
    focused = page.locator("#email")
    expect(focused).to_be_focused()
    outline = focused.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline not in ("", "none"), "focus on a field is not visible"
