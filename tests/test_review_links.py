"""Mailed links that outlive the change they should die with (review)."""

from __future__ import annotations

import pytest
from mailed import press, press_as_shown, signed_in
from support import PASSWORD, UA_PHONE, browser, login, page, submit

from app.models import User

DAY = 86400
OLD_MAILBOX_PASSWORD = "whoever reads the old mailbox chose this"


@pytest.fixture
def ada(mail_app, smtp):
    return signed_in(mail_app, smtp)


def test_a_not_me_link_mailed_to_an_old_address_dies_with_the_change(ada, mail_app, smtp,
                                                                      clock):
    """Ada moves her account away from an address she no longer trusts. A week later the
    way back from the old address has expired, but a "This wasn't me" link mailed there
    before the change still stops her password and hands whoever reads that mailbox a form
    for a new one: the account is theirs."""
    assert login(browser(mail_app, UA_PHONE)).status_code == 302
    not_me = smtp.mailbox.about("ada@example.com", "New sign-in").link("/not-me#")
    submit(ada, "/account/email", {"email": "ada@new.example", "current_password": PASSWORD})
    press(ada, smtp.mailbox.about("ada@new.example", "Confirm your new").link(
        "/account/email/confirm#"))
    assert User.get().email == "ada@new.example"
    clock.advance(8 * DAY)  # the undo link (7 days) has expired

    old_mailbox = browser(mail_app)
    done = press_as_shown(old_mailbox, not_me)
    form = page(done).find("form", action="/password/reset")
    if form is not None:
        token = form.find("input", attrs={"name": "token"})["value"]
        submit(old_mailbox, "/password/reset", {"token": token, "act": "1",
                                                 "new_password": OLD_MAILBOX_PASSWORD})
    assert login(browser(mail_app), "ada@new.example", OLD_MAILBOX_PASSWORD).status_code != 302, (
        "the old mailbox took the account over through a not-me link")
    assert done.status_code in (400, 410)


def test_a_change_of_address_does_not_tell_which_addresses_have_accounts(ada, mail_app, smtp):
    """The form answers alike for a taken and a free address, but the account page then shows
    a pending change only for the free one: any signed-in person can probe addresses."""
    other = browser(mail_app)
    submit(other, "/register", {"email": "grace@example.com", "password": PASSWORD})
    shown = {}
    for address in ("grace@example.com", "nobody@example.com"):
        answer = submit(ada, "/account/email", {"email": address, "current_password": PASSWORD})
        assert answer.status_code == 302
        pending = page(ada.get("/account")).find(attrs={"data-test": "pending-email"})
        shown[address] = pending.get_text(" ", strip=True) if pending else ""
    assert ("grace@example.com" in shown["grace@example.com"]) == (
        "nobody@example.com" in shown["nobody@example.com"]), shown
