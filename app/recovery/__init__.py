"""Account recovery by email: address verification (``registration``), password reset and
"This wasn't me" (``reset``), change of address (``email_change``), and the security notices
they all send.

Every mail is queued in the transaction of the change that causes it, and every link is a
single-use token (``links``). What answers a person who is not signed in answers the same
whether or not the address has an account; what differs happens only in the mail.
"""

from __future__ import annotations

from typing import Any

from flask import url_for

from app import devices, mail, settings, throttle, words
from app.limits import for_mail
from app.models import User


def can_sign_in(user: User) -> bool:
    return user.email_verified_at is not None or not settings.current().email_verification


def within_budget(kind: str, account: int | str, now: float, *, recipient: str) -> bool:
    """Count one mail of ``kind`` to ``recipient`` about ``account`` (an id; an address that
    has none stands for itself); False once either's budget for the hour is spent, so that
    nobody can flood a mailbox through our forms. Counted before the mail is queued, in one
    transaction for both: requests at the same instant cannot all see the budget unspent."""
    try:
        throttle.take(for_mail(kind, recipient, account), now)
    except throttle.Throttled:
        return False
    return True


def described(now: float, ip: str, user_agent: str, device_name: str = "") -> dict[str, str]:
    """When, from which address and device: what every mail says about its cause. The device
    is the name the person gave it, where they did, and the browser its User-Agent names."""
    device = devices.describe(user_agent)
    if device_name:
        device = f"{device_name} ({device})"
    return {"when": words.when(now), "ip": ip, "device": device}


def notice(to: str, kind: str, *, now: float, ip: str = "", user_agent: str = "",
           forgot: bool = True, change_url: str = "", device_name: str = "",
           undo_url: str = "", **fields: Any) -> None:
    """The security notice ``kind`` (``words.NOTICES``, its ``fields`` filled in): what
    happened, when, from where (``device_name``: the name the person gave that browser), and
    what to do, with a button to reset the password (and one to change it: ``change_url``; one
    to undo what happened: ``undo_url``)."""
    if not within_budget(kind, to, now, recipient=to):
        return
    said = words.NOTICES[kind]
    forgot_url = mail.link(url_for("auth.forgot")) if forgot else ""
    mail.queue(to, "notice", said.subject, now=now, what=said.what.format(**fields),
               todo=said.todo.format(**fields), forgot_url=forgot_url, change_url=change_url,
               undo_url=undo_url,
               **described(now, ip, user_agent, device_name))
