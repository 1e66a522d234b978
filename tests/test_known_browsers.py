"""Which browsers an account knows: the record that decides whether a sign-in is announced."""

from __future__ import annotations

from mailed import press, signed_in
from support import UA_FIREFOX, UA_PHONE, browser, login, submit

from app.models import KnownDevice, LoginSession, OutboxMessage

NEW_PASSWORD = "a brand new and rather long passphrase"
DAY = 86400


def alerts():
    return OutboxMessage.select().where(OutboxMessage.subject.startswith("New sign-in"))


def test_a_dormant_account_announces_a_new_browser_after_prune(mail_app, smtp, clock):
    """Its sessions were pruned long ago; the browsers it knows are what tells a stranger's
    sign-in from the account's very first."""
    ada = signed_in(mail_app, smtp)
    submit(ada, "/logout", {}, form_page="/account")
    clock.advance(61 * DAY)
    assert mail_app.test_cli_runner().invoke(args=["prune"]).exit_code == 0
    assert not LoginSession.select().exists()
    assert login(browser(mail_app, UA_PHONE)).status_code == 302
    (alert,) = alerts()
    assert alert.subject.startswith("New sign-in: Mobile Safari 17 on iOS")


def test_a_reset_forgets_the_browsers_known_before_it(mail_app, smtp):
    """Whoever learnt the old password may have signed in from any of them: after a reset each
    is a stranger again, announced at its next sign-in (the reset's own browser is not)."""
    ada = signed_in(mail_app, smtp)
    assert KnownDevice.select().count() == 1
    phone = browser(mail_app, UA_PHONE)
    submit(phone, "/password/forgot", {"email": "ada@example.com"})
    link = smtp.mailbox.about("ada@example.com", "Reset your password").link("/password/reset#")
    assert press(phone, link, new_password=NEW_PASSWORD).status_code == 302
    assert alerts().count() == 0  # the reset's own sign-in: the reset is mailed instead
    assert [d.label for d in KnownDevice.select()] == ["Mobile Safari 17 on iOS"]
    assert login(ada, password=NEW_PASSWORD).status_code == 302
    (alert,) = alerts()
    assert alert.subject.startswith("New sign-in: Firefox 128 on Ubuntu")
    assert ada.environ_base["HTTP_USER_AGENT"] == UA_FIREFOX
