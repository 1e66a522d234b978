"""The outbox: mail is a row written with the change that causes it, and sent after the commit.

``put`` joins the caller's transaction, so a mail exists exactly when its cause committed.
``send_due`` claims rows one at a time with a conditional UPDATE (a lease): two senders, in one
process or many, never send the same row, and a row whose sender died is claimed again once
the lease runs out. A failure is retried with exponential backoff, then given up and logged;
whatever goes wrong with one message (a transport error, a message that cannot even be
composed) is that message's failure, never the batch's: the rest are sent all the same.

What SMTP cannot promise: a sender that dies after the server accepted a message but before
``sent_at`` was written sends it again after the lease. Every copy carries the same
``Message-ID`` (from the row's id), which mail systems use to recognise duplicates.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.utils import formatdate

import peewee

from app import metrics
from app.addresses import mailbox
from app.mail.transport import MailError, Transport
from app.models import OutboxMessage

log = logging.getLogger("gatehouse.mail")

# CRLF line ends, and headers folded only past 998 characters: the default policy folds a long
# subject before its first word, which some clients show as a leading space.
MAIL_POLICY = policy.SMTP.clone(max_line_length=998)
LEASE = 120  # seconds a claim holds: longer than one SMTP exchange can take
MAX_ATTEMPTS = 12  # about 34 hours of retries with the backoff below
BACKOFF_BASE, BACKOFF_CAP = 10, 4 * 3600


def put(*, recipient: str, subject: str, text: str, html: str, now: float,
        send_at: float | None = None) -> OutboxMessage:
    """Queue a message (to be sent at ``send_at``, else now), inside the caller's transaction
    if there is one."""
    return OutboxMessage.create(recipient=recipient, subject=subject[:255], text_body=text,
                                html_body=html, created_at=now,
                                next_attempt_at=now if send_at is None else send_at)


def rewrite(message_id: int, *, subject: str, text: str, html: str) -> bool:
    """Replace a queued message's words before its first attempt; False once a sender has
    claimed or sent it (then it goes out as it was)."""
    return bool(OutboxMessage.update(subject=subject[:255], text_body=text, html_body=html)
                .where((OutboxMessage.id == message_id) & (OutboxMessage.attempts == 0)
                       & OutboxMessage.claim.is_null()).execute())


def backoff(attempts: int) -> int:
    """Seconds before attempt ``attempts + 1``: 10, 20, 40, ... capped at four hours."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)


def _due(now: float) -> peewee.Expression:
    return ((OutboxMessage.sent_at.is_null()) & (OutboxMessage.failed_at.is_null())
            & (OutboxMessage.next_attempt_at <= now)
            & (OutboxMessage.claimed_until.is_null() | (OutboxMessage.claimed_until < now)))


def claim(message_id: int, now: float) -> str | None:
    """Take the row for ``LEASE`` seconds; None when another sender has it or it is done."""
    token = secrets.token_hex(16)
    taken = (OutboxMessage.update(claim=token, claimed_until=now + LEASE,
                                  attempts=OutboxMessage.attempts + 1)
             .where((OutboxMessage.id == message_id) & _due(now)).execute())
    return token if taken == 1 else None


def send_due(transport: Transport, *, sender: str, domain: str, now: Callable[[], float],
             limit: int = 100) -> tuple[int, int]:
    """Send up to ``limit`` due messages; returns (sent, failed this time)."""
    sent = failed = 0
    ids = [row.id for row in OutboxMessage.select(OutboxMessage.id).where(_due(now()))
           .order_by(OutboxMessage.next_attempt_at).limit(limit)]
    for message_id in ids:
        token = claim(message_id, now())
        if token is None:
            continue
        row = OutboxMessage.get_by_id(message_id)
        try:
            message = compose(row, sender=sender, domain=domain)
        except Exception as exc:  # noqa: BLE001 - no retry makes a malformed message well
            _failed(row, token, f"cannot be composed: {type(exc).__name__}", now(), final=True)
            failed += 1
            continue
        try:
            transport.send(message)
        except Exception as exc:  # noqa: BLE001 - one message's failure, never the batch's
            error = str(exc) if isinstance(exc, MailError) else type(exc).__name__
            _failed(row, token, error, now())
            failed += 1
            continue
        # The body goes once sent: it holds a link's token, of which only the hash is kept.
        OutboxMessage.update(sent_at=now(), claimed_until=None, last_error="", text_body="",
                             html_body="").where(
            (OutboxMessage.id == message_id) & (OutboxMessage.claim == token)).execute()
        log.info("mail %s sent (%s, attempt %s)", message_id, row.subject, row.attempts)
        metrics.mail("sent")
        sent += 1
    return sent, failed


def _failed(row: OutboxMessage, token: str, error: str, now: float, *,
            final: bool = False) -> None:
    gave_up = final or row.attempts >= MAX_ATTEMPTS
    retry_at = now + backoff(row.attempts)
    OutboxMessage.update(claimed_until=None, last_error=error[:255], next_attempt_at=retry_at,
                         failed_at=now if gave_up else None).where(
        (OutboxMessage.id == row.id) & (OutboxMessage.claim == token)).execute()
    metrics.mail("given_up" if gave_up else "failed")
    if gave_up:
        log.error("mail %s given up after %s attempts: %s", row.id, row.attempts, error)
    else:
        log.warning("mail %s not sent (attempt %s, retry in %s s): %s", row.id, row.attempts,
                    backoff(row.attempts), error)


def compose(row: OutboxMessage, *, sender: str, domain: str) -> EmailMessage:
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"], message["Subject"] = sender, row.subject
    message["To"] = mailbox(row.recipient)
    message["Date"] = formatdate(row.created_at, usegmt=True)
    # The same id on every attempt: a duplicate after a crash mid-send is recognisable.
    message["Message-ID"] = f"<gatehouse-{row.id}-{int(row.created_at)}@{domain}>"
    message.set_content(row.text_body)
    message.add_alternative(row.html_body, subtype="html")
    return message


def next_wake(now: float) -> float | None:
    """When a row next becomes due (or its lease runs out); None when nothing is pending."""
    pending = OutboxMessage.select(OutboxMessage.next_attempt_at,
                                   OutboxMessage.claimed_until).where(
        OutboxMessage.sent_at.is_null() & OutboxMessage.failed_at.is_null())
    times = [max(row.next_attempt_at, row.claimed_until or 0) for row in pending.limit(1000)]
    return min(times) if times else None
