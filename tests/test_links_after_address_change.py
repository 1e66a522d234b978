"""A change of address takes with it every link that acts for whoever reads the old mailbox:
"This wasn't me" (review: tests/test_review_links.py), the unlock link, and the summary of
sign-ins still waiting for the hour's end, which no fresh link may join."""

from __future__ import annotations

import pytest
from mailed import open_link, press, signed_in
from support import PASSWORD, PUBLIC_URL, UA_PHONE, browser, login, submit

from app.config import MAIL_WINDOW
from app.models import LinkToken, OutboxMessage, User

ALERTS_PER_HOUR = 5
NEW = "ada@new.example"


@pytest.fixture
def ada_mail(mail_app, smtp):
    return mail_app, signed_in(mail_app, smtp)


def move_to_new_address(ada, smtp) -> None:
    submit(ada, "/account/email", {"email": NEW, "current_password": PASSWORD})
    press(ada, smtp.mailbox.about(NEW, "Confirm your new").link("/account/email/confirm#"))
    assert User.get().email == NEW


def phone(app, number: int):
    client = browser(app, UA_PHONE)
    client.environ_base["REMOTE_ADDR"] = f"198.51.100.{number}"
    assert login(client, User.get().email).status_code == 302
    return client


def test_the_unlock_link_mailed_to_the_old_address_dies_with_the_change(make_app, smtp):
    app = make_app(GATEHOUSE_EMAIL_VERIFICATION="required", GATEHOUSE_SMTP_URL=smtp.url,
                   GATEHOUSE_PUBLIC_URL=PUBLIC_URL,
                   GATEHOUSE_LOGIN_LIMIT_ACCOUNT=3)
    try:
        ada = signed_in(app, smtp)
        for number in range(4):
            stranger = browser(app)
            stranger.environ_base["REMOTE_ADDR"] = f"198.51.100.{number + 1}"
            login(stranger, password="not the password at all")
        unlock = smtp.mailbox.about("ada@example.com", "locked").link("/unlock#")
        move_to_new_address(ada, smtp)
        assert open_link(browser(app), unlock).status_code == 410
    finally:
        app.extensions["gatehouse_mail"].dispatcher.stop()


def test_a_waiting_summary_of_sign_ins_gets_no_fresh_link_after_the_change(ada_mail, smtp,
                                                                          clock):
    app, ada = ada_mail
    for number in range(ALERTS_PER_HOUR + 1):  # the last one waits in the hour's summary
        phone(app, number + 1)
    move_to_new_address(ada, smtp)
    phone(app, 50)  # after the change: its link must go to the new address only

    summaries = OutboxMessage.select().where(OutboxMessage.subject.contains("new sign-ins"))
    assert {(m.recipient, m.subject) for m in summaries} == {
        ("ada@example.com", "1 more new sign-ins to your account"),
        (NEW, "1 more new sign-ins to your account")}
    clock.advance(MAIL_WINDOW)
    app.test_cli_runner().invoke(args=["send-mail"])
    old = smtp.mailbox.about("ada@example.com", "more new sign-ins").link("/not-me#")
    new = smtp.mailbox.about(NEW, "more new sign-ins").link("/not-me#")
    assert open_link(browser(app), old).status_code == 410
    assert open_link(browser(app), new).status_code == 200
    assert "198.51.100.50" in smtp.mailbox.about(NEW, "more new sign-ins").text
    live = LinkToken.select().where(LinkToken.purpose == "not_me", LinkToken.used_at.is_null())
    assert live.count() == 1
