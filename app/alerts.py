"""Mails about sign-ins and stolen cookies, queued in the transaction of the security event.

"New sign-in" goes out when an account is signed in to from a browser whose ``__Host-device``
cookie has not signed in to it before (the sign-in event says so). The first sign-in of a new
account is never announced (the person has just confirmed their address).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, has_request_context, request, url_for

from app import audit, devices, links, mail, recovery, settings
from app.models import LoginSession, User
from app.sessions import rules

# Changes to how an account signs in, each mailed as a notice (words.NOTICES) the moment it is
# recorded; the event's detail fills the notice in (a passkey's name, the codes left).
PROOF_CHANGES = (audit.PASSKEY_ADDED, audit.PASSKEY_REMOVED, audit.TWO_STEP_ON,
                 audit.TWO_STEP_OFF, audit.RECOVERY_CODE_USED)


def init_app(app: Flask) -> None:
    audit.on(audit.SIGN_IN, signed_in)
    audit.on(rules.REUSE_DETECTED, reuse_detected)
    for kind, listener in _PROOF_LISTENERS.items():
        audit.on(kind, listener)


def _proof_changed(kind: str) -> Callable[..., None]:
    def listener(*, user: int | None, session: int | None, ip: str, now: float,
                 detail: str = "") -> None:
        if not _mailing() or user is None:
            return
        recovery.notice(
            User.get_by_id(user).email, kind, now=now, ip=ip,
            user_agent=request.headers.get("User-Agent", ""),
            device_name=devices.name_of(user, audit.device_of_request()),
            change_url=mail.link(url_for("account.password")), name=detail, left=detail)

    listener.__name__ = f"mail_{kind}"
    return listener


# Made once per process: ``audit.on`` keeps one of each listener, however many apps start.
_PROOF_LISTENERS = {kind: _proof_changed(kind) for kind in PROOF_CHANGES}


def _mailing() -> bool:
    """Only for an app that sends mail, and for events caused by a request."""
    return has_request_context() and mail.mailer().transport is not None


def first_session(user_id: int, session_id: int) -> bool:
    """Whether this is the account's first session ever (nothing to warn about)."""
    return not LoginSession.select().where((LoginSession.user == user_id)
                                           & (LoginSession.id != session_id)).exists()


def signed_in(*, user: int | None, session: int | None, ip: str, now: float,
              detail: str = "") -> None:
    if (not _mailing() or user is None or session is None or detail != audit.NEW_DEVICE
            or first_session(user, session)):
        return
    row = LoginSession.get_by_id(session)
    email = User.get_by_id(user).email
    token = links.issue(links.NOT_ME, user, session_id=session, now=now,
                        ttl=settings.current().policy.max_age)
    context = recovery.described(now, ip, row.user_agent)
    subject = f"New sign-in: {context['device']}, {ip}, {context['when']}"
    mail.queue(email, "new_sign_in", subject, now=now,
               url=mail.link(url_for("auth.not_me", token=token)), **context)


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
