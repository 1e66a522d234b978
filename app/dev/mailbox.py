"""The development outbox as a tester reads it: each ``.eml`` file, newest first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

LINK = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class Mail:
    id: str
    to: str
    subject: str
    sent_at: float
    text: str

    @property
    def links(self) -> list[str]:
        return LINK.findall(self.text)

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "to": self.to, "subject": self.subject, "sent_at": self.sent_at,
                "text": self.text, "links": self.links}


def read(directory: Path | None, to: str = "") -> list[Mail]:
    """Every message in ``directory`` (to the address ``to``, when given), newest first."""
    if directory is None or not directory.is_dir():
        return []
    found = []
    for path in directory.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        recipient = str(message["To"] or "")
        address = recipient.rsplit("<", 1)[-1].rstrip(">").strip().lower()
        if to and address != to.strip().lower():
            continue
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        found.append(Mail(path.stem, recipient, str(message["Subject"] or ""),
                          path.stat().st_mtime, text))
    return sorted(found, key=lambda mail: (mail.sent_at, mail.id), reverse=True)
