"""Mails about sign-ins and stolen cookies, queued in the transaction of the security event.

"New sign-in" goes out when an account is signed in to from a browser whose ``__Host-device``
cookie has not signed in to it before (the sign-in event says so). The first sign-in of a new
account is never announced (the person has just confirmed their address); a dormant one's is,
because the browsers it remembers outlive its pruned sessions.
"""

from __future__ import annotations

from flask import Flask, has_request_context, request, url_for

from app import audit, devices, links, mail, recovery, settings
from app.models import KnownDevice, LoginSession, User
from app.sessions import rules
from app.sessions.state import Method


def init_app(app: Flask) -> None:
    audit.on(audit.SIGN_IN, signed_in)
    audit.on(rules.REUSE_DETECTED, reuse_detected)


def _mailing() -> bool:
    """Only for an app that sends mail, and for events caused by a request."""
    return has_request_context() and mail.mailer().transport is not None


def first_session(user_id: int, session_id: int) -> bool:
    """Whether this is the account's first sign-in ever (nothing to warn about): no browser
    is remembered for it and no other session is left. Both are asked, because ``prune``
    deletes old sessions (a dormant account keeps its devices) and a reset forgets devices
    (its sessions stay, ended, for a while)."""
    return not (KnownDevice.select().where(KnownDevice.user == user_id).exists()
                or LoginSession.select().where((LoginSession.user == user_id)
                                               & (LoginSession.id != session_id)).exists())


def signed_in(*, user: int | None, session: int | None, ip: str, now: float,
              detail: str = "") -> None:
    if (not _mailing() or user is None or session is None or detail != audit.NEW_DEVICE
            or first_session(user, session)):
        return
    row = LoginSession.get_by_id(session)
    if row.start_method == Method.RESET:
        return  # the mailbox was proven just now, and the reset itself is mailed
    email = User.get_by_id(user).email
    token = links.issue(links.NOT_ME, user, session_id=session, now=now,
                        ttl=settings.current().policy.max_age)
    context = recovery.described(now, ip, row.user_agent)
    subject = f"New sign-in: {context['device']}, {ip}, {context['when']}"
    mail.queue(email, "new_sign_in", subject, now=now,
               url=mail.link(url_for("auth.not_me", _anchor=token)), **context)


def reuse_detected(*, user: int | None, session: int | None, ip: str, now: float,
                   detail: str = "") -> None:
    if not _mailing() or user is None:
        return
    row = LoginSession.get_or_none(LoginSession.id == session)
    recovery.notice(
        User.get_by_id(user).email, rules.REUSE_DETECTED, now=now, ip=ip,
        user_agent=row.user_agent if row else request.headers.get("User-Agent", ""),
        change_url=mail.link(url_for("account.password")),
        device_name=devices.name_of(user, row.device_hash) if row else "")
