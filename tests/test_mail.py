"""The mail channel alone: SMTP URLs, the outbox (claims, retries, nothing sent twice), the
development outbox directory, the CLI, and the start-up refusal without a mail server."""

from __future__ import annotations

import logging
import threading
from email.message import EmailMessage

import pytest
from servers import free_port
from support import PUBLIC_URL, SECRET

from app import config, mail, settings
from app.config import SmtpTarget, parse_smtp_url
from app.mail import outbox
from app.mail.transport import MailError, SmtpTransport
from app.models import OutboxMessage


@pytest.mark.parametrize("url, expected", [
    ("smtp://mail.example.com:2525", SmtpTarget("smtp", "mail.example.com", 2525)),
    ("smtp://mail.example.com", SmtpTarget("smtp", "mail.example.com", 25)),
    ("smtp+starttls://ada:p%40ss@mx.example.com", SmtpTarget("smtp+starttls", "mx.example.com",
                                                              587, "ada", "p@ss")),
    ("smtps://u:pw@mx.example.com:4650", SmtpTarget("smtps", "mx.example.com", 4650, "u", "pw")),
])
def test_smtp_urls_are_parsed(url, expected):
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize("url", ["http://mx.example.com", "smtp://", "smtp://mx:notaport",
                                 "smtp://mx.example.com/path", "mx.example.com:25"])
def test_malformed_smtp_urls_are_refused(url):
    with pytest.raises(ValueError, match="GATEHOUSE_SMTP_URL"):
        parse_smtp_url(url)


def test_smtp_target_never_shows_its_password():
    assert "hunter2" not in repr(parse_smtp_url("smtps://ada:hunter2@mx.example.com"))


@pytest.mark.parametrize("missing", ["GATEHOUSE_SMTP_URL", "GATEHOUSE_PUBLIC_URL"])
def test_production_with_verification_refuses_to_start_without_mail(tmp_path, missing):
    settings = {"SECRET_KEY": SECRET, "GATEHOUSE_SMTP_URL": "smtp://127.0.0.1:25",
                "GATEHOUSE_PUBLIC_URL": PUBLIC_URL, missing: ""}
    with pytest.raises(config.ConfigError, match=missing) as refused:
        config.load(settings, str(tmp_path), environ={})
    assert "\n" not in str(refused.value)
    config.load({**settings, "GATEHOUSE_EMAIL_VERIFICATION": "off"}, str(tmp_path), environ={})


@pytest.mark.parametrize("url", ["example.com", "https://example.com/app", "ftp://example.com",
                                 "https://example.com/?next=x"])
def test_public_url_must_be_an_origin(tmp_path, url):
    with pytest.raises(config.ConfigError, match="GATEHOUSE_PUBLIC_URL"):
        config.load({"SECRET_KEY": SECRET, "GATEHOUSE_EMAIL_VERIFICATION": "off",
                     "GATEHOUSE_PUBLIC_URL": url}, str(tmp_path), environ={})


def queue_one(app, recipient="ada@example.com", clock=None):
    with app.test_request_context():
        mail.queue(recipient, "notice", "Test notice", now=clock() if clock else 0.0,
                   what="Something <b>happened</b>.", todo="Nothing to do.")


def test_a_message_has_a_text_and_an_escaped_html_part(mail_app, smtp, clock):
    queue_one(mail_app, clock=clock)
    assert mail.send_pending(mail_app) == (1, 0)
    (got,) = smtp.mailbox.wait_for("ada@example.com")
    assert got.subject == "Test notice"
    assert "Something <b>happened</b>." in got.text
    assert "Something &lt;b&gt;happened&lt;/b&gt;." in got.html
    assert got.message["From"] == "Gatehouse <no-reply@gatehouse.test>"
    assert got.message["Message-ID"].endswith("@gatehouse.test>")


def test_a_failed_send_is_retried_with_backoff_and_sent_once(mail_app, smtp, clock, caplog):
    smtp.stop()
    queue_one(mail_app, clock=clock)
    with caplog.at_level(logging.WARNING, "gatehouse.mail"):
        assert mail.send_pending(mail_app) == (0, 1)
    assert "retry in 10 s" in caplog.text
    smtp.start()
    assert mail.send_pending(mail_app) == (0, 0)  # not due yet
    clock.advance(10)
    assert mail.send_pending(mail_app) == (1, 0)
    assert mail.send_pending(mail_app) == (0, 0)
    assert len(smtp.mailbox.wait_for("ada@example.com")) == 1
    sent = OutboxMessage.get()
    assert sent.attempts == 2 and sent.text_body == sent.html_body == ""  # no link kept


def test_backoff_doubles_up_to_a_cap():
    assert [outbox.backoff(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert outbox.backoff(30) == outbox.BACKOFF_CAP


def test_two_senders_never_claim_the_same_message(mail_app, clock):
    queue_one(mail_app, clock=clock)
    row = OutboxMessage.get()
    with mail_app.app_context():
        claims = [outbox.claim(row.id, clock()) for _ in range(2)]
    assert sum(c is not None for c in claims) == 1


def test_a_claim_whose_sender_died_is_taken_again_after_the_lease(mail_app, smtp, clock):
    """A worker that claimed a message and died before sending: nothing is lost."""
    queue_one(mail_app, clock=clock)
    assert outbox.claim(OutboxMessage.get().id, clock()) is not None  # ... and then it died
    assert mail.send_pending(mail_app) == (0, 0)
    clock.advance(outbox.LEASE + 1)
    assert mail.send_pending(mail_app) == (1, 0)
    assert len(smtp.mailbox.wait_for("ada@example.com")) == 1


def test_parallel_senders_send_each_message_once(mail_app, smtp, clock):
    for n in range(10):
        queue_one(mail_app, recipient=f"p{n}@example.com", clock=clock)

    def sender():
        with mail_app.app_context():
            mail.send_pending(mail_app)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for n in range(10):
        smtp.mailbox.wait_for(f"p{n}@example.com")
    assert len(smtp.mailbox.messages) == 10


def test_the_app_sends_after_the_request_in_the_background(mail_app, smtp):
    with mail_app.test_request_context():
        from flask import g

        mail.queue("ada@example.com", "notice", "Background", now=0.0, what="w", todo="t")
        assert g.mail_queued
        mail.kick_after_request(mail_app.response_class())
    (got,) = smtp.mailbox.wait_for("ada@example.com")
    assert got.subject == "Background"


def test_cli_sends_what_is_pending(mail_app, smtp, clock):
    queue_one(mail_app, clock=clock)
    result = mail_app.test_cli_runner().invoke(args=["send-mail"])
    assert result.exit_code == 0 and "Sent 1 message, 0 failed" in result.output
    assert len(smtp.mailbox.wait_for("ada@example.com")) == 1


def test_development_without_smtp_writes_eml_files_and_logs(make_app, tmp_path, caplog, clock):
    app = make_app(GATEHOUSE_ENV="development", GATEHOUSE_EMAIL_VERIFICATION="required")
    app.instance_path = str(tmp_path / "instance")  # FileTransport was built from it: rebuild
    settings.init_app(app)
    mail.init_app(app)
    queue_one(app, clock=clock)
    with caplog.at_level(logging.INFO, "gatehouse.mail"):
        assert mail.send_pending(app) == (1, 0)
    (eml,) = (tmp_path / "instance" / "outbox").glob("*.eml")
    assert b"Subject: Test notice" in eml.read_bytes()
    assert "Something <b>happened</b>." in caplog.text and str(eml) in caplog.text
    assert app.config["GATEHOUSE_PUBLIC_URL"] == "http://localhost:5000"


def test_production_without_a_mail_server_queues_nothing(app, clock):
    queue_one(app, clock=clock)
    assert not OutboxMessage.select().exists()


def test_an_unreachable_server_raises_mail_error():
    with pytest.raises(MailError):
        SmtpTransport(SmtpTarget("smtp", "127.0.0.1", free_port())).send(EmailMessage())


def test_a_message_that_cannot_be_composed_fails_alone(mail_app, smtp, clock, caplog):
    """Issue 21, item 14: one odd recipient (written by an older release, whose address check
    let it through) once stopped every mail behind it. It fails for good, at once, and the
    others are sent in the same batch."""
    queue_one(mail_app, recipient="ada@example.com", clock=clock)
    queue_one(mail_app, recipient="x@[evil.example", clock=clock)  # stored as an old row
    queue_one(mail_app, recipient="bob@example.com", clock=clock)
    with caplog.at_level(logging.WARNING, "gatehouse.mail"):
        assert mail.send_pending(mail_app) == (2, 1)
    smtp.mailbox.wait_for("ada@example.com")
    smtp.mailbox.wait_for("bob@example.com")
    bad = OutboxMessage.get(OutboxMessage.recipient == "x@[evil.example")
    assert bad.failed_at is not None and "cannot be composed" in bad.last_error
    clock.advance(outbox.BACKOFF_CAP + outbox.LEASE)
    assert mail.send_pending(mail_app) == (0, 0)  # never at the head of the queue again
    result = mail_app.test_cli_runner().invoke(args=["send-mail"])
    assert result.exit_code == 0 and result.exception is None


def test_any_error_of_one_send_is_that_messages_failure(mail_app, smtp, clock, monkeypatch):
    sent = []

    class Flaky:
        def send(self, message):
            if message["To"] == "ada@example.com":
                raise AttributeError("a library's bug, not a MailError")
            sent.append(message["To"])

    monkeypatch.setattr(mail_app.extensions["gatehouse_mail"], "transport", Flaky())
    for recipient in ("ada@example.com", "bob@example.com"):
        queue_one(mail_app, recipient=recipient, clock=clock)
    assert mail.send_pending(mail_app) == (1, 1)
    assert sent == ["bob@example.com"]
    failed = OutboxMessage.get(OutboxMessage.recipient == "ada@example.com")
    assert failed.failed_at is None and failed.last_error == "AttributeError"  # retried later


def test_an_internationalised_domain_is_addressed_in_ascii(mail_app, smtp, clock):
    queue_one(mail_app, recipient="ada@exämple.com", clock=clock)
    assert mail.send_pending(mail_app) == (1, 0)
    (got,) = smtp.mailbox.wait_for("ada@xn--exmple-cua.com")
    assert got.message["To"] == "ada@xn--exmple-cua.com"
