"""A real SMTP server in the test process (aiosmtpd on 127.0.0.1 at a free port), and what
it received, with the links read out of each message."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

LINK = re.compile(r"https?://[^\s<>\"]+")


@dataclass
class Received:
    recipient: str
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()

    def links(self) -> list[str]:
        return LINK.findall(self.text)

    def link(self, path_part: str) -> str:
        (found,) = {url for url in self.links() if path_part in url}
        return found


class Mailbox:
    """What the server received, in order; ``wait_for`` blocks until a message arrives."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.arrived:
            for recipient in envelope.rcpt_tos:
                self.messages.append(Received(recipient, message))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def to(self, recipient: str) -> list[Received]:
        return [m for m in self.messages if m.recipient == recipient]

    def wait_for(self, recipient: str, count: int = 1, timeout: float = 20) -> list[Received]:
        """The first ``count`` messages to ``recipient``, once they have arrived."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.to(recipient)) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"no mail #{count} for {recipient}: {self.subjects()}"
                self.arrived.wait(left)
        return self.to(recipient)[:count]

    def about(self, recipient: str, subject_part: str, timeout: float = 20) -> Received:
        """The newest message to ``recipient`` whose subject has ``subject_part``, once one
        has arrived."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not (found := [m for m in self.to(recipient) if subject_part in m.subject]):
                left = deadline - time.monotonic()
                assert left > 0, f"no mail to {recipient} about {subject_part!r}: " \
                                 f"{self.subjects()}"
                self.arrived.wait(left)
        return found[-1]

    def subjects(self) -> list[tuple[str, str]]:
        return [(m.recipient, m.subject) for m in self.messages]


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.mailbox = Mailbox()
        self.port = port
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
