"""New-sign-in alerts have a budget: five per account and hour, the rest of the hour in one
summary sent as it ends, each sign-in in it with its own "This wasn't me"."""

from __future__ import annotations

from mailed import press_as_shown, signed_in
from polling import eventually
from support import UA_PHONE, browser, login

from app.config import MAIL_WINDOW
from app.models import LinkToken, LoginSession, OutboxMessage
from app.sessions import rules

ALERTS_PER_HOUR = 5  # per account; the rest of the hour goes into one summary


def phones(app, count: int) -> list:
    """``count`` browsers new to the account, each signed in (each its own device)."""
    made = []
    for number in range(count):
        phone = browser(app, UA_PHONE)
        phone.environ_base["REMOTE_ADDR"] = f"198.51.100.{number + 1}"
        assert login(phone).status_code == 302
        made.append(phone)
    return made


def test_five_alerts_an_hour_then_one_summary_with_a_link_each(mail_app, smtp, clock):
    signed_in(mail_app, smtp)
    strangers = phones(mail_app, ALERTS_PER_HOUR + 3)
    alerts = OutboxMessage.select().where(OutboxMessage.subject.startswith("New sign-in"))
    assert alerts.count() == ALERTS_PER_HOUR
    summary = OutboxMessage.get(OutboxMessage.subject.contains("more new sign-ins"))
    assert summary.sent_at is None and summary.subject == "3 more new sign-ins to your account"
    # Links in the summary's first drafts were never sent: only the final ones are live.
    live = LinkToken.select().where(LinkToken.purpose == "not_me", LinkToken.used_at.is_null())
    assert live.count() == ALERTS_PER_HOUR + 3
    # The alerts go out as they are queued (the sender runs after each request): let the
    # last of them land, so that what falls due at the hour's end is the summary alone.
    eventually(lambda: alerts.where(OutboxMessage.sent_at.is_null()).count() == 0, within=10,
               what="every alert sent")

    clock.advance(MAIL_WINDOW)
    assert "Sent 1 " in mail_app.test_cli_runner().invoke(args=["send-mail"]).output
    mail = smtp.mailbox.about("ada@example.com", "more new sign-ins")
    links = [url for url in mail.links() if "/not-me#" in url]
    assert len(links) == 3 and len(set(links)) == 3
    for number in (ALERTS_PER_HOUR + 1, ALERTS_PER_HOUR + 2, ALERTS_PER_HOUR + 3):
        assert f"198.51.100.{number}" in mail.text
    press_as_shown(browser(mail_app), links[1])
    ended = LoginSession.get(LoginSession.ip_address == f"198.51.100.{ALERTS_PER_HOUR + 2}")
    assert ended.end_reason == rules.NOT_ME
    assert strangers[ALERTS_PER_HOUR + 1].get("/account").status_code == 302
    assert strangers[ALERTS_PER_HOUR].get("/account").status_code == 200  # only that one


def test_the_budget_starts_again_the_next_hour(mail_app, smtp, clock):
    signed_in(mail_app, smtp)
    phones(mail_app, ALERTS_PER_HOUR)
    clock.advance(MAIL_WINDOW)
    phones(mail_app, 1)
    alerts = OutboxMessage.select().where(OutboxMessage.subject.startswith("New sign-in"))
    assert alerts.count() == ALERTS_PER_HOUR + 1
    assert not OutboxMessage.select().where(
        OutboxMessage.subject.contains("more new sign-ins")).exists()
