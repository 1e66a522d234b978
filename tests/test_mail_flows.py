"""Every flow that sends mail, against a real SMTP server (aiosmtpd on 127.0.0.1): links are
read out of the messages the server received, as a person would click them."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from mailed import confirm, open_link, press, verified
from polling import eventually
from servers import ROOT
from support import (
    PASSWORD,
    PUBLIC_URL,
    UA_PHONE,
    Cookies,
    browser,
    csrf_token,
    is_postgres,
    login,
    page,
    register,
    submit,
)

from app.config import RESET_COMPARISONS
from app.mail import outbox
from app.models import LoginSession, OutboxMessage, SecurityEvent, User
from app.recovery import reset
from app.sessions import rules

NEW_PASSWORD = "a brand new and rather long passphrase"


@pytest.fixture
def ada(mail_app, smtp):
    client = verified(browser(mail_app), smtp)
    assert login(client).status_code == 302
    return client


def test_registration_mails_a_link_and_sign_in_waits_for_it(mail_app, smtp):
    client = browser(mail_app)
    answer = register(client)
    assert answer.status_code == 200 and "Check your email" in answer.get_data(as_text=True)
    (mail,) = smtp.mailbox.wait_for("ada@example.com")
    assert login(client).status_code == 401
    link = mail.link("/email/verify#")
    assert "Confirm my address" in open_link(client, link).get_data(as_text=True)
    assert User.get().email_verified_at is None  # opening the page changed nothing
    assert confirm(client, link).headers["Location"] == "/account"
    assert client.get("/account").status_code == 200  # confirming signed this browser in
    submit(client, "/logout", {}, form_page="/account")
    assert login(client).status_code == 302


def test_confirming_an_address_takes_the_password_it_was_registered_with(mail_app, smtp):
    """Someone registers your address under their password before you do. The mail you did
    not expect cannot make their account yours by a press of its button: confirming takes
    their password, which you do not know, and a reset link gives the account yours."""
    register(browser(mail_app), "ada@example.com", "the intruder's own long password")
    link = smtp.mailbox.wait_for("ada@example.com")[0].link("/email/verify#")
    ada = browser(mail_app)
    refused = confirm(ada, link, PASSWORD)
    assert refused.status_code == 401
    field = page(refused).find(id="password")
    assert field["aria-invalid"] == "true"
    assert "That password is not right" in page(refused).find(id="password-error").get_text()
    assert User.get().email_verified_at is None
    assert SecurityEvent.get(SecurityEvent.kind == "sign_in_failed").user_id == User.get().id
    # Forgot password: an unconfirmed account gets a reset link, which confirms the address
    # with Ada's password; the intruder's no longer signs in.
    submit(ada, "/password/forgot", {"email": "ada@example.com"})
    reset = smtp.mailbox.wait_for("ada@example.com", 2)[1]
    assert reset.subject == "Reset your password"
    assert press(ada, reset.link("/password/reset#"),
                 new_password=NEW_PASSWORD).headers["Location"] == "/sessions"
    assert User.get().email_verified_at is not None
    assert login(browser(mail_app), "ada@example.com",
                 "the intruder's own long password").status_code == 401
    assert login(browser(mail_app), "ada@example.com", NEW_PASSWORD).status_code == 302
    # The old verification link died with the credential change.
    assert open_link(browser(mail_app), link).status_code == 410  # Gone: used up


def test_signing_in_unconfirmed_mails_a_new_link(mail_app, smtp):
    client = browser(mail_app)
    register(client)
    smtp.mailbox.wait_for("ada@example.com")
    answer = login(client)
    assert answer.status_code == 401 and "open the link we mailed" in answer.get_data(as_text=True)
    second = smtp.mailbox.wait_for("ada@example.com", 2)[1]
    assert confirm(client, second.link("/email/verify#")).status_code == 302


def test_a_taken_address_answers_like_a_new_one_and_mails_its_owner(mail_app, smtp):
    verified(browser(mail_app), smtp)
    intruder = browser(mail_app)
    taken = register(intruder, "ada@example.com", "another long password for this")
    fresh = register(browser(mail_app), "bob@example.com")
    assert taken.status_code == fresh.status_code == 200
    assert (page(taken).main.get_text().replace("ada@", "bob@")
            == page(fresh).main.get_text())
    owner = smtp.mailbox.wait_for("ada@example.com", 2)[1]
    assert owner.subject == "Someone tried to register with your address"
    assert owner.link("/login") and owner.link("/password/forgot")
    # Signing in with the intruder's password answers exactly like an unconfirmed account.
    wrong = login(intruder, "ada@example.com", "another long password for this")
    unconfirmed = login(browser(mail_app), "bob@example.com")
    assert wrong.status_code == unconfirmed.status_code == 401
    assert page(wrong).main.get_text() == page(unconfirmed).main.get_text().replace("bob@",
                                                                                   "ada@")


def test_verification_off_registers_and_signs_in_as_before(client):
    answer = register(client)
    assert answer.headers["Location"] == "/login"
    assert login(client).status_code == 302
    assert not OutboxMessage.select().exists()


def test_password_reset_ends_every_session_and_signs_this_browser_in(ada, mail_app, smtp):
    phone = browser(mail_app, UA_PHONE)
    login(phone)
    forgetful = browser(mail_app)
    answer = submit(forgetful, "/password/forgot", {"email": "ada@example.com"})
    assert answer.status_code == 200
    mail = smtp.mailbox.about("ada@example.com", "Reset your password")
    assert "30 minutes" in mail.text and "30 minutes" in mail.html
    link = mail.link("/password/reset#")
    assert open_link(forgetful, link).status_code == 200
    done = press(forgetful, link, new_password=NEW_PASSWORD)
    assert done.status_code == 302 and done.headers["Location"] == "/sessions"
    assert forgetful.get("/account").status_code == 200
    for other in (ada, phone):
        assert other.get("/account").status_code == 302
    reasons = [s.end_reason for s in LoginSession.select().where(LoginSession.ended_at.is_null(
        False))]
    assert reasons.count(rules.PASSWORD_RESET) == 2
    assert login(browser(mail_app)).status_code == 401
    assert login(browser(mail_app), password=NEW_PASSWORD).status_code == 302
    smtp_notice = smtp.mailbox.about("ada@example.com", "Your password was reset")
    assert "every session was signed out" in smtp_notice.text


def reset_link(client, smtp, email="ada@example.com") -> str:
    submit(client, "/password/forgot", {"email": email})
    return smtp.mailbox.about(email, "Reset your password").link("/password/reset#")


def test_a_reset_link_works_once(ada, mail_app, smtp):
    client = browser(mail_app)
    link = reset_link(client, smtp)
    assert press(client, link, new_password=NEW_PASSWORD).status_code == 302
    again = open_link(browser(mail_app), link)
    assert again.status_code == 410
    text = again.get_data(as_text=True)
    assert "already been used" in text and 'href="/password/forgot"' in text


def test_a_reset_refuses_the_current_password_a_few_times_per_link(ada, mail_app, smtp):
    """The current password is refused with the reason; each link may compare only a few, so
    whoever holds one gets no oracle for the current password."""
    client = browser(mail_app)
    link = reset_link(client, smtp)
    before = User.get().password_hash
    for _ in range(RESET_COMPARISONS):
        refused = press(client, link, new_password=PASSWORD)
        assert refused.status_code == 200
        assert "Choose a password different from your current one." in refused.text
    assert press(client, link, new_password=NEW_PASSWORD).status_code == 429
    assert User.get().password_hash == before
    submit(client, "/password/forgot", {"email": "ada@example.com"})
    fresh = smtp.mailbox.wait_for("ada@example.com", 3)[-1].link("/password/reset#")
    assert press(client, fresh, new_password=NEW_PASSWORD).status_code == 302


def test_an_expired_reset_link_explains_itself(ada, mail_app, smtp, clock):
    client = browser(mail_app)
    link = reset_link(client, smtp)
    clock.advance(1800)
    answer = open_link(client, link)
    assert answer.status_code == 410 and "expired" in answer.get_data(as_text=True)
    assert "Get a new reset link" in answer.get_data(as_text=True)


def test_a_link_with_one_character_changed_is_refused(ada, mail_app, smtp):
    client = browser(mail_app)
    link = reset_link(client, smtp)
    last = link[-1]
    altered = link[:-1] + ("A" if last != "A" else "B")
    answer = open_link(client, altered)
    assert answer.status_code == 400 and "not valid" in answer.get_data(as_text=True)
    assert open_link(client, link).status_code == 200  # the real one still works


def test_a_reset_for_an_unknown_address_sends_nothing(mail_app, smtp):
    submit(browser(mail_app), "/password/forgot", {"email": "nobody@example.com"})
    assert not OutboxMessage.select().exists()


def test_forgot_answers_the_same_for_known_and_unknown_addresses(ada, mail_app, smtp, clock):
    """Same status and body; timing over 30 tries each is recorded, not asserted. An hour
    passes between rounds, so every known try is within its budget and really mails a link."""
    client = browser(mail_app)
    csrf = csrf_token(client.get("/password/forgot"))
    answers, timings = {}, {"known": [], "unknown": []}
    for _ in range(30):
        clock.advance(3600)
        for kind, email in (("known", "ada@example.com"), ("unknown", "nobody@example.com")):
            started = time.perf_counter()
            reply = client.post("/password/forgot", data={"csrf_token": csrf, "email": email})
            timings[kind].append((time.perf_counter() - started) * 1000)
            answers.setdefault(kind, set()).add((reply.status_code, reply.get_data(as_text=True)))
    assert answers["known"] == answers["unknown"] and len(answers["known"]) == 1
    assert OutboxMessage.select().where(OutboxMessage.subject == "Reset your password"
                                        ).count() == 30
    record_timing(timings)


def record_timing(timings: dict[str, list[float]]) -> None:
    figures = {kind: {"median_ms": round(statistics.median(values), 3),
                      "mean_ms": round(statistics.mean(values), 3),
                      "p90_ms": round(sorted(values)[int(len(values) * 0.9)], 3)}
               for kind, values in timings.items()}
    engine = "postgresql" if is_postgres(os.environ.get("TEST_DATABASE_URL", "")) else "sqlite"
    out = ROOT / "test-artifacts" / f"forgot-timing-{engine}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print("forgot-password timing, 30 tries each:", figures)


def test_the_smtp_server_down_during_registration(mail_app, smtp, clock):
    """The page answers, the mail arrives once the server is back, and only once."""
    smtp.stop()
    answer = register(browser(mail_app))
    assert answer.status_code == 200 and "Check your email" in answer.get_data(as_text=True)
    dispatcher = mail_app.extensions["gatehouse_mail"].dispatcher
    wait_until(lambda: OutboxMessage.get().attempts >= 1 and OutboxMessage.get().claim
               and OutboxMessage.get().claimed_until is None)
    assert OutboxMessage.get().sent_at is None and OutboxMessage.get().last_error
    smtp.start()
    clock.advance(outbox.backoff(1))
    dispatcher.kick()
    (mail,) = smtp.mailbox.wait_for("ada@example.com")
    assert mail.subject == "Confirm your email address"
    wait_until(lambda: OutboxMessage.get().sent_at is not None)
    clock.advance(3600)
    assert mail_app.test_cli_runner().invoke(args=["send-mail"]).output.startswith("Sent 0")
    assert len(smtp.mailbox.messages) == 1


def wait_until(condition, timeout: float = 20) -> None:
    """Poll the database for what a background sender has done (bounded)."""
    eventually(condition, within=timeout, every=0.02,
               what="the background sender did not get there")


def test_a_host_header_naming_another_site_changes_no_link(mail_app, smtp):
    client = browser(mail_app)
    hostile = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    csrf = csrf_token(client.get("/register", headers=hostile))
    client.post("/register", data={"csrf_token": csrf, "email": "ada@example.com",
                                   "password": PASSWORD}, headers=hostile)
    (mail,) = smtp.mailbox.wait_for("ada@example.com")
    assert "evil.example" not in mail.text + mail.html
    assert mail.links() and all(url.startswith(PUBLIC_URL) for url in mail.links())


def test_a_known_browser_signing_in_again_is_not_announced(ada, mail_app, smtp):
    """Known means this browser's device cookie, not its User-Agent: another browser of the
    very same make is announced. The outbox row would commit with the sign-in: its absence is
    the answer."""
    alerts = OutboxMessage.select().where(OutboxMessage.subject.startswith("New sign-in"))
    submit(ada, "/logout", {}, form_page="/account")
    assert login(ada).status_code == 302
    assert alerts.count() == 0
    login(browser(mail_app, UA_PHONE))
    assert alerts.count() == 1
    login(browser(mail_app))  # ada's User-Agent, without ada's device cookie
    assert alerts.count() == 2


def test_a_password_change_is_mailed(ada, smtp):
    submit(ada, "/account/password", {"current_password": PASSWORD,
                                      "new_password": NEW_PASSWORD})
    mail = smtp.mailbox.about("ada@example.com", "Your password was changed")
    assert "every other session was signed out" in mail.text
    assert mail.link("/password/forgot")


def test_reuse_detection_is_mailed(ada, mail_app, smtp, clock):
    stolen = Cookies.of(ada)
    clock.advance(400)  # past the access token and its leeway
    ada.get("/account")
    ada.get("/account")
    clock.advance(31)
    thief = browser(mail_app)
    stolen.put(thief)
    thief.get("/account")
    mail = smtp.mailbox.about("ada@example.com", "its sign-in cookie was used twice")
    assert mail.subject == "A session was signed out: its sign-in cookie was used twice"
    assert "its sign-in cookie was used twice" in mail.text and "token" not in mail.text
    assert mail.link("/account/password") and mail.link("/password/forgot")
    assert "Change my password" in mail.html and "Reset my password" in mail.html


def test_changing_the_address_waits_for_the_new_one_to_be_confirmed(ada, mail_app, smtp):
    refused = submit(ada, "/account/email", {"email": "ada@new.example",
                                             "current_password": "not my password at all"})
    assert refused.status_code == 200 and "not your current password" in refused.get_data(
        as_text=True)
    answer = submit(ada, "/account/email", {"email": "Ada@New.example",
                                            "current_password": PASSWORD})
    assert answer.status_code == 302
    mail = smtp.mailbox.about("ada@new.example", "Confirm your new email address")
    assert User.get().email == "ada@example.com"
    assert press(ada, mail.link("/account/email/confirm#")).status_code == 302
    assert User.get().email == "ada@new.example"
    old = smtp.mailbox.about("ada@example.com", "Your email address was changed")
    assert "ada@new.example" in old.text
    assert login(browser(mail_app), "ada@new.example").status_code == 302


def test_reset_requests_are_throttled_per_address_and_per_account(ada, mail_app, smtp, clock):
    client = browser(mail_app)
    answers = [submit(client, "/password/forgot", {"email": "ada@example.com"}).status_code
               for _ in range(11)]
    assert answers == [200] * 10 + [429]
    resets = OutboxMessage.select().where(OutboxMessage.subject == "Reset your password")
    assert resets.count() == 3  # per account: the rest answered the same, and sent nothing


def test_the_mail_budget_holds_for_requests_at_the_same_instant(ada, mail_app, smtp, clock):
    """Twelve reset requests for one account from twelve addresses at once: three mails."""
    barrier = threading.Barrier(12, timeout=30)

    def ask(number: int) -> None:
        with mail_app.test_request_context():
            barrier.wait()
            reset.request_reset("ada@example.com", now=clock(), ip=f"198.51.100.{number}",
                                   user_agent="")

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(ask, range(12)))
    resets = OutboxMessage.select().where(OutboxMessage.subject == "Reset your password")
    assert resets.count() == 3


def test_a_reset_cancels_a_change_of_address_still_waiting_for_its_link(ada, mail_app, smtp):
    """A thief who knew the password asks to move the account to their address; the owner
    resets the password before the thief opens the link: the link no longer works."""
    thief = browser(mail_app, UA_PHONE)
    login(thief)
    submit(thief, "/account/email", {"email": "thief@evil.example", "current_password": PASSWORD})
    moved = smtp.mailbox.about("thief@evil.example", "Confirm your new email address")
    owner = browser(mail_app)
    press(owner, reset_link(owner, smtp), new_password=NEW_PASSWORD)
    assert open_link(browser(mail_app), moved.link("/account/email/confirm#")).status_code == 410
    assert User.get().email == "ada@example.com"


def test_a_password_change_cancels_a_pending_change_of_address(ada, mail_app, smtp):
    submit(ada, "/account/email", {"email": "ada@new.example", "current_password": PASSWORD})
    moved = smtp.mailbox.about("ada@new.example", "Confirm your new email address")
    submit(ada, "/account/password", {"current_password": PASSWORD,
                                      "new_password": NEW_PASSWORD})
    assert open_link(browser(mail_app), moved.link("/account/email/confirm#")).status_code == 410
    assert User.get().email == "ada@example.com"


def test_a_reset_link_sent_to_the_old_address_dies_with_the_change(ada, mail_app, smtp):
    old_mailbox = browser(mail_app)
    link = reset_link(old_mailbox, smtp)
    submit(ada, "/account/email", {"email": "ada@new.example", "current_password": PASSWORD})
    moved = smtp.mailbox.about("ada@new.example", "Confirm your new email address")
    assert press(ada, moved.link("/account/email/confirm#")).status_code == 302
    assert open_link(old_mailbox, link).status_code == 410
    assert ada.get("/account").status_code == 200


def test_failures_from_elsewhere_do_not_lock_the_owner_out_of_changing_address(
        ada, mail_app, smtp):
    """The owner's browser is judged by its own attempts here too, as at sign-in."""
    stranger = browser(mail_app, UA_PHONE)
    for _ in range(12):
        login(stranger, password="a wrong password of some length")
    answer = submit(ada, "/account/email", {"email": "ada@new.example",
                                            "current_password": PASSWORD})
    assert answer.status_code == 302


def test_alerts_name_the_device_as_its_owner_does(ada, smtp):
    me = ada.get("/api/me").get_json()["session_id"]
    submit(ada, f"/sessions/{me}/name", {"name": "Work <laptop>"}, form_page="/sessions")
    submit(ada, "/account/password", {"current_password": PASSWORD,
                                      "new_password": NEW_PASSWORD})
    mail = smtp.mailbox.about("ada@example.com", "Your password was changed")
    assert "Work <laptop> (Firefox 128 on Ubuntu)" in mail.text
    assert "Work &lt;laptop&gt; (Firefox 128 on Ubuntu)" in mail.html
