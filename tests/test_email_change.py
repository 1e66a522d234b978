"""A change of address: confirmed in a browser signed in to the account, shown while it waits,
and undone from the old address for a week."""

from __future__ import annotations

import pytest
from mailed import open_link, press, press_as_shown, signed_in
from support import PASSWORD, UA_PHONE, browser, login, page, submit

from app import words
from app.models import LoginSession, OutboxMessage, User
from app.sessions import rules

NEW_PASSWORD = "a brand new and rather long passphrase"
THIEF_PASSWORD = "the thief's own rather long passphrase"
DAY = 86400


@pytest.fixture
def ada(mail_app, smtp):
    return signed_in(mail_app, smtp)


def change(client, email: str):
    return submit(client, "/account/email", {"email": email, "current_password": PASSWORD})


def test_the_old_address_undoes_a_change_and_leads_to_a_new_password(ada, mail_app, smtp):
    """Someone with the password moves the account to their address and resets the password
    there: the link mailed to the old address still puts it back, signs everyone out, stops
    the password and goes on to a new one."""
    thief = browser(mail_app, UA_PHONE)
    login(thief)
    assert change(thief, "thief@evil.example").status_code == 302
    press(thief, smtp.mailbox.about("thief@evil.example", "Confirm your new").link(
        "/account/email/confirm#"))
    assert User.get().email == "thief@evil.example"
    told = smtp.mailbox.about("ada@example.com", "Your email address was changed")
    assert "7 days" in told.text and not told.link("/account/email/undo#").count("/password")
    assert "/password/forgot" not in told.text  # a reset would go to the new address
    submit(thief, "/password/forgot", {"email": "thief@evil.example"})
    reset = smtp.mailbox.about("thief@evil.example", "Reset your password").link(
        "/password/reset#")
    assert press(thief, reset, new_password=THIEF_PASSWORD).status_code == 302

    owner = browser(mail_app)
    undo = told.link("/account/email/undo#")
    shown = page(open_link(owner, undo)).main.get_text(" ")
    assert "ada@example.com" in shown and "thief@evil.example" in shown
    done = press_as_shown(owner, undo)
    assert done.status_code == 200 and page(done).find(attrs={"data-test": "email-restored"})
    assert User.get().email == "ada@example.com"
    assert thief.get("/account").status_code == 302
    assert not LoginSession.select().where(LoginSession.ended_at.is_null()).exists()
    thiefs = LoginSession.select().where(LoginSession.user_agent == UA_PHONE).order_by(
        LoginSession.id.desc()).first()
    assert thiefs.end_reason == rules.EMAIL_RESTORED
    refused = login(browser(mail_app), "ada@example.com", THIEF_PASSWORD)
    assert refused.status_code == 403
    assert words.PASSWORD_MUST_BE_RESET in page(refused).main.get_text()
    token = page(done).find("form", action="/password/reset").find(
        "input", attrs={"name": "token"})["value"]
    assert submit(owner, "/password/reset", {"token": token, "act": "1",
                                             "new_password": NEW_PASSWORD}).status_code == 302
    assert login(browser(mail_app), "ada@example.com", NEW_PASSWORD).status_code == 302
    assert open_link(browser(mail_app), undo).status_code == 410  # once


def test_the_way_back_lasts_a_week(ada, mail_app, smtp, clock):
    change(ada, "ada@new.example")
    press(ada, smtp.mailbox.about("ada@new.example", "Confirm your new").link(
        "/account/email/confirm#"))
    undo = smtp.mailbox.about("ada@example.com", "was changed").link("/account/email/undo#")
    clock.advance(7 * DAY - 60)
    assert open_link(browser(mail_app), undo).status_code == 200
    clock.advance(120)
    assert open_link(browser(mail_app), undo).status_code == 410


def test_a_pending_change_shows_on_the_account_page(ada, mail_app, smtp):
    assert not page(ada.get("/account")).find(attrs={"data-test": "pending-email"})
    change(ada, "ada@new.example")
    waiting = page(ada.get("/account")).find(attrs={"data-test": "pending-email"})
    assert "ada@new.example" in waiting.get_text()
    press(ada, smtp.mailbox.about("ada@new.example", "Confirm your new").link(
        "/account/email/confirm#"))
    assert not page(ada.get("/account")).find(attrs={"data-test": "pending-email"})


def test_changing_to_the_current_address_says_so(ada):
    queued = OutboxMessage.select().count()
    answer = change(ada, "Ada@Example.com")
    assert answer.status_code == 200
    assert "That is already your address" in page(answer).find(id="email-error").get_text()
    assert "We sent a link" not in answer.get_data(as_text=True)
    assert OutboxMessage.select().count() == queued


def test_the_confirmation_needs_the_accounts_session_and_names_it(ada, mail_app, smtp):
    change(ada, "ada@new.example")
    link = smtp.mailbox.about("ada@new.example", "Confirm your new").link(
        "/account/email/confirm#")
    stranger = browser(mail_app)
    shown = open_link(stranger, link)
    assert shown.status_code == 403 and "ada@example.com" not in shown.get_data(as_text=True)
    assert page(shown).find(attrs={"data-test": "needs-session"})
    assert press(stranger, link).status_code == 403
    bob = signed_in(mail_app, smtp, "bob@example.com")
    assert press(bob, link).status_code == 403
    assert User.get(User.id == 1).email == "ada@example.com"
    named = page(open_link(ada, link))
    assert named.find(attrs={"data-test": "email"}).get_text() == "ada@example.com"
    assert named.find(attrs={"data-test": "new-email"}).get_text() == "ada@new.example"
    assert press(ada, link).status_code == 302
    assert User.get(User.id == 1).email == "ada@new.example"
