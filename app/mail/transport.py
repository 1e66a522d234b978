"""How a composed message leaves: an SMTP server from ``GATEHOUSE_SMTP_URL``, or, in development
without one, a file under ``instance/outbox/`` and a log line.

No Flask and no database here: a transport takes a message and either delivers it or raises
``MailError``.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from app.config import SmtpTarget

log = logging.getLogger("gatehouse.mail")

SMTP_TIMEOUT = 15  # seconds for connecting and for each command: a stuck server is a failure


class MailError(Exception):
    """The message was not delivered this time; the outbox tries again later."""


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpTransport:
    """One connection per batch would be cheaper; one per message keeps failures separate and
    the code short, and mail volume here is a few messages per person per month."""

    def __init__(self, target: SmtpTarget) -> None:
        self.target = target

    def send(self, message: EmailMessage) -> None:
        target = self.target
        try:
            with self._connect() as smtp:
                if target.scheme == "smtp+starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if target.username:
                    smtp.login(target.username, target.password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            # The class and the server's words only: never the message or the credentials.
            raise MailError(f"{type(exc).__name__}: {str(exc)[:150]}") from None

    def _connect(self) -> smtplib.SMTP:
        target = self.target
        if target.scheme == "smtps":
            return smtplib.SMTP_SSL(target.host, target.port, timeout=SMTP_TIMEOUT,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT)


class FileTransport:
    """Development without a mail server: each message becomes ``<outbox>/<n>.eml`` (open it in
    any mail client, or read the link in it) and a log line with its text."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").split("@")[0]
        path = self.directory / f"{name}.eml"
        path.write_bytes(bytes(message))
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        log.info("development mail to %s, saved as %s:\n%s\n%s", message["To"], path,
                 message["Subject"], text)
