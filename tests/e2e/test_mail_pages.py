"""Recovery by mail in Chromium, against gunicorn and a real SMTP server: register and confirm,
forget the password and reset it with the mailed link, and end a stranger's session from a
"New sign-in" mail. Each new page is screenshotted (and checked by axe-core), and so is one
rendered HTML mail."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import pytest
from mail_server import SmtpServer
from servers import Server, free_port, server_env
from support import CHEAP_ARGON2, PASSWORD, SECRET, UA_PHONE

from app import create_app
from e2e.support import (
    TIMEOUT_MS,
    VIEWPORTS,
    Person,
    check_page,
    expect,
    new_email,
    screenshot,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NEW_PASSWORD = "a brand new and rather long passphrase"


@pytest.fixture(scope="module")
def smtp():
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_site(site, smtp, tmp_path_factory):
    """gunicorn requiring confirmed addresses, mailing through ``smtp``, its links built from
    its own address (``site`` is started first: it empties a shared PostgreSQL database)."""
    url = (os.environ.get("TEST_DATABASE_URL")
           or f"sqlite:///{tmp_path_factory.mktemp('e2e-mail') / 'mail.sqlite3'}")
    create_app({"TESTING": True, "SECRET_KEY": SECRET, "DATABASE_URL": url,
                "GATEHOUSE_EMAIL_VERIFICATION": "off", **CHEAP_ARGON2})  # the schema
    port = free_port()
    # On PostgreSQL both servers share one database, and so the per-address registration
    # count that ``site``'s scenarios have already run up from 127.0.0.1.
    env = server_env(url, SECRET, GATEHOUSE_EMAIL_VERIFICATION="required",
                     GATEHOUSE_SMTP_URL=smtp.url, GATEHOUSE_PUBLIC_URL=f"http://127.0.0.1:{port}",
                     GATEHOUSE_REGISTER_LIMIT_IP=1000)
    with Server(env, workers=2, threads=4, port=port) as server:
        yield server


@pytest.fixture
def browsers(chromium, mail_site):
    opened: list[Person] = []

    def open_browser(user_agent: str | None = None) -> Person:
        context = chromium.new_context(base_url=mail_site.url, user_agent=user_agent,
                                       viewport=VIEWPORTS["desktop"])
        context.set_default_timeout(TIMEOUT_MS)
        opened.append(Person(context, context.new_page()))
        return opened[-1]

    yield open_browser
    problems = [p for person in opened for p in person.problems]
    for person in opened:
        person.context.close()
    assert not problems, f"the browser reported: {problems}"


def open_mailed(person: Person, url: str) -> None:
    """Open a mailed link as a mail client does: its token is the fragment, which the page's
    script sends; wait for the link's own page, and check the address bar kept no token."""
    parts = urlsplit(url)
    person.go(f"{parts.path}#{parts.fragment}")
    expect(person.page.locator('[data-test="link-open"]')).to_have_count(0)
    assert parts.fragment not in person.page.url


def follow(person: Person, url: str, name: str, button: str) -> None:
    """Open a mailed link, screenshot its page, then press its button."""
    open_mailed(person, url)
    check_page(person, name)
    person.page.get_by_role("button", name=button, exact=True).click()
    person.page.wait_for_load_state()


def registered(person: Person, smtp) -> str:
    email = new_email("mail")
    person.fill_and_submit("/register", {"Email": email, "Password": PASSWORD},
                           "Create account")
    expect(person.page.get_by_role("heading", level=1)).to_have_text("Check your email")
    check_page(person, "mail-check-email")
    link = smtp.mailbox.wait_for(email)[0].link("/email/verify#")
    open_mailed(person, link)
    person.page.get_by_label("Password", exact=True).fill("not the password I chose, sorry")
    person.page.get_by_role("button", name="Confirm my address", exact=True).click()
    expect(person.page.locator("#password-error")).to_have_text(re.compile(
        "That password is not right"))
    check_page(person, "mail-confirm-address-wrong-password")
    person.page.get_by_label("Password", exact=True).fill(PASSWORD)
    person.page.get_by_role("button", name="Confirm my address", exact=True).click()
    person.expect_flash("Your email address is confirmed, and you are signed in")
    person.expect_signed_in(email)
    person.page.get_by_role("button", name="Sign out", exact=True).click()
    person.expect_sign_in_page("You have signed out.")
    return email


def screenshot_mail(chromium, html: str, name: str) -> None:
    """As a mail client shows it: its own blank page, outside the site and its CSP (mail HTML
    carries inline styles, which the site's pages never do)."""
    context = chromium.new_context(viewport=VIEWPORTS["desktop"])
    try:
        page = context.new_page()
        page.set_content(html)
        screenshot(page, name)
    finally:
        context.close()


def test_a_forgotten_password_is_reset_with_the_mailed_link(browsers, smtp, chromium):
    ada = browsers()
    email = registered(ada, smtp)
    ada.go("/login")
    ada.page.locator('[data-test="forgot"]').click()
    check_page(ada, "mail-forgot")
    ada.page.get_by_label("Email", exact=True).fill(email)
    ada.page.get_by_role("button", name="Send me a link", exact=True).click()
    expect(ada.page.locator('[data-test="reset-sent"]')).to_be_visible()
    check_page(ada, "mail-forgot-sent")
    mail = smtp.mailbox.about(email, "Reset your password")
    screenshot_mail(chromium, mail.html, "mail-reset-message-html")
    link = mail.link("/password/reset#")
    open_mailed(ada, link)
    check_page(ada, "mail-reset-form")
    ada.page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    ada.page.get_by_role("button", name="Save the new password", exact=True).click()
    ada.expect_flash("Your password was reset")
    ada.go("/account")
    ada.expect_signed_in(email)
    open_mailed(ada, link)
    expect(ada.page.locator('[data-test="link-problem"]')).to_contain_text("already been used")
    check_page(ada, "mail-link-used")
    browsers().sign_in(email, NEW_PASSWORD)


def test_this_was_not_me_ends_the_strangers_session(browsers, smtp):
    ada = browsers()
    email = registered(ada, smtp)
    ada.sign_in(email)
    stranger = browsers(UA_PHONE)
    stranger.sign_in(email)
    link = smtp.mailbox.about(email, "New sign-in").link("/not-me#")
    follow(ada, link, "mail-not-me", "End it and choose a new password")
    expect(ada.page.locator('[data-test="not-me-done"]')).to_be_visible()
    check_page(ada, "mail-not-me-done")
    stranger.go("/account")
    stranger.expect_sign_in_page("This wasn't me")
    # The page it answered with is the reset form: the mailed link proved the mailbox.
    ada.page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    ada.page.get_by_role("button", name="Save the new password", exact=True).click()
    ada.expect_flash("Your password was reset")
    ada.go("/account/email")
    check_page(ada, "mail-change-email")
