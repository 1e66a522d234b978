"""What a lock costs the owner and tells a stranger: only failed password checks count, a lock
mails its owner a way out, a reset lifts it, and nothing a form mails can flood an address."""

from __future__ import annotations

from mailed import confirm, open_link, press
from support import PASSWORD, PUBLIC_URL, browser, login, register, signed_up, submit

from app.config import IN_FLIGHT_STALE
from app.db import database
from app.models import OutboxMessage, Throttle

EMAIL = "ada@example.com"
WRONG = "not the password at all"
NEW_PASSWORD = "a brand new and rather long passphrase"
LOCKED = "Your account was locked after failed sign-ins"


def from_ip(app, address: str):
    client = browser(app)
    client.environ_base["REMOTE_ADDR"] = address
    return client


def confirmed(app, smtp, email: str = EMAIL):
    """Register ``email`` and confirm it through the mailed link; signed out again."""
    client = browser(app)
    register(client, email)
    link = smtp.mailbox.wait_for(email)[-1].link("/email/verify#")
    assert confirm(client, link).status_code == 302
    submit(client, "/logout", {}, form_page="/account")


def test_refused_attempts_do_not_count_toward_the_failure_cap(make_app, clock):
    """101 wrong sign-ins in under a second: 10 are checked, the rest refused and not counted,
    so once the short window is over the owner's new browser signs in (it used to be locked
    out for 30 days, reset or not)."""
    app = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=10, GATEHOUSE_LOGIN_LIMIT_IP=1000,
                   GATEHOUSE_LOGIN_LIMIT_WINDOW=600)
    signed_up(browser(app), EMAIL)
    statuses = [login(from_ip(app, f"198.51.100.{n}"), EMAIL, WRONG).status_code
                for n in range(101)]
    assert statuses == [401] * 10 + [429] * 91
    clock.advance(601)
    assert login(from_ip(app, "203.0.113.7"), EMAIL).status_code == 302


def test_a_password_reset_lifts_the_failure_cap(make_app, smtp, clock):
    """100 failed checks over ten windows lock every browser the account does not know until
    a success; the reset link proves the mailbox, and lifts it."""
    app = make_app(GATEHOUSE_EMAIL_VERIFICATION="required", GATEHOUSE_SMTP_URL=smtp.url,
                   GATEHOUSE_PUBLIC_URL=PUBLIC_URL, GATEHOUSE_LOGIN_LIMIT_ACCOUNT=10,
                   GATEHOUSE_LOGIN_LIMIT_IP=1000, GATEHOUSE_LOGIN_LIMIT_WINDOW=600)
    try:
        confirmed(app, smtp)
        for window in range(10):
            for n in range(10):
                login(from_ip(app, f"198.51.{window}.{n}"), EMAIL, WRONG)
            clock.advance(601)
        owner = from_ip(app, "203.0.113.7")
        assert login(owner, EMAIL).status_code == 429
        submit(owner, "/password/forgot", {"email": EMAIL})
        link = smtp.mailbox.about(EMAIL, "Reset your password").link("/password/reset#")
        assert press(owner, link, new_password=NEW_PASSWORD).status_code == 302
        assert login(from_ip(app, "203.0.113.8"), EMAIL, NEW_PASSWORD).status_code == 302
    finally:
        app.extensions["gatehouse_mail"].dispatcher.stop()


def test_a_right_password_on_an_unconfirmed_account_counts_like_a_wrong_one(make_app, smtp):
    """Register an address with your own password, then sign in with it twelve times: the
    answers are the same whether the address was new (the account is yours, unconfirmed) or
    already taken (your password is wrong for it), so they do not tell which."""
    app = make_app(GATEHOUSE_EMAIL_VERIFICATION="required", GATEHOUSE_SMTP_URL=smtp.url,
                   GATEHOUSE_PUBLIC_URL=PUBLIC_URL)
    try:
        confirmed(app, smtp, "taken@example.com")
        mine = "my own password, not theirs"
        answers = {}
        for email, network in (("taken@example.com", "198.51.100"), ("new@example.com",
                                                                      "203.0.113")):
            register(from_ip(app, f"{network}.200"), email, mine)
            answers[email] = [login(from_ip(app, f"{network}.{n}"), email, mine).status_code
                              for n in range(12)]
        assert answers["new@example.com"] == answers["taken@example.com"] == [401] * 10 + [
            429] * 2
    finally:
        app.extensions["gatehouse_mail"].dispatcher.stop()


def test_a_lock_mails_the_owner_once_a_link_that_unlocks_the_account(make_app, smtp):
    app = make_app(GATEHOUSE_EMAIL_VERIFICATION="required", GATEHOUSE_SMTP_URL=smtp.url,
                   GATEHOUSE_PUBLIC_URL=PUBLIC_URL, GATEHOUSE_LOGIN_LIMIT_ACCOUNT=5)
    try:
        confirmed(app, smtp)
        statuses = [login(from_ip(app, f"198.51.100.{n}"), EMAIL, WRONG).status_code
                    for n in range(8)]
        assert statuses == [401] * 5 + [429] * 3
        owner = from_ip(app, "203.0.113.7")
        assert login(owner, EMAIL).status_code == 429
        mail = smtp.mailbox.about(EMAIL, LOCKED)
        assert "198.51.100.4" in mail.text  # the attempt that locked it
        link = mail.link("/unlock#")
        assert open_link(owner, link).status_code == 200  # opening it (a scanner) does nothing
        assert login(owner, EMAIL).status_code == 429
        done = press(owner, link)
        assert done.status_code == 302 and done.headers["Location"] == "/login"
        assert login(owner, EMAIL).status_code == 302
        assert open_link(owner, link).status_code == 410  # used: once only
        assert [m.subject for m in smtp.mailbox.to(EMAIL)].count(LOCKED) == 1
    finally:
        app.extensions["gatehouse_mail"].dispatcher.stop()


def test_a_change_of_address_mails_an_address_three_times_an_hour_at_most(make_app, smtp):
    """The change-of-address form mails the address typed into it: per account and per
    recipient, no more than three an hour, counted before the mail is queued, whoever asks."""
    app = make_app(GATEHOUSE_EMAIL_VERIFICATION="required", GATEHOUSE_SMTP_URL=smtp.url,
                   GATEHOUSE_PUBLIC_URL=PUBLIC_URL)
    try:
        for email in (EMAIL, "bob@example.com"):
            confirmed(app, smtp, email)
        ada, bob = browser(app), browser(app)
        assert login(ada, EMAIL).status_code == 302
        assert login(bob, "bob@example.com").status_code == 302

        def change(client, address: str) -> int:
            return submit(client, "/account/email", {"email": address,
                                                     "current_password": PASSWORD}).status_code

        assert [change(ada, "victim@example.org") for _ in range(5)] == [302] * 5
        assert [change(bob, "victim@example.org") for _ in range(2)] == [302] * 2  # recipient
        assert [change(ada, f"other{n}@example.org") for n in range(2)] == [302] * 2  # account
        subject = "Confirm your new email address"
        queued = OutboxMessage.select().where(OutboxMessage.subject == subject)
        assert sorted(m.recipient for m in queued) == ["victim@example.org"] * 3
    finally:
        app.extensions["gatehouse_mail"].dispatcher.stop()


def test_refused_attempts_do_not_count_against_the_address(make_app):
    """A guesser refused on one account goes on trying: the address's allowance is used up by
    failed checks only, so the next person behind it still signs in."""
    app = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=3, GATEHOUSE_LOGIN_LIMIT_IP=6)
    signed_up(browser(app), EMAIL)
    signed_up(browser(app), "bob@example.com")
    office = "192.0.2.80"
    statuses = [login(from_ip(app, office), EMAIL, WRONG).status_code for _ in range(12)]
    assert statuses == [401] * 3 + [429] * 9
    assert login(from_ip(app, office), "bob@example.com").status_code == 302


def test_a_check_left_in_flight_by_a_dead_worker_is_forgotten(make_app, clock):
    """A worker killed between admitting a check and landing it leaves it in flight; once it
    is older than any check takes, it holds nobody up."""
    app = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=3)
    signed_up(browser(app), EMAIL)
    with database.connection_context():
        assert Throttle.update(window_start=clock(), failures=2, in_flight=1,
                               in_flight_at=clock() - IN_FLIGHT_STALE - 1).where(
            Throttle.key == f"account:{EMAIL}").execute() == 1
    assert login(from_ip(app, "198.51.100.1"), EMAIL).status_code == 302
    assert Throttle.get(Throttle.key == f"account:{EMAIL}").in_flight == 0
