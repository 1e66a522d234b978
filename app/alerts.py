"""Mails about sign-ins and stolen cookies, queued in the transaction of the security event.

"New sign-in" goes out when an account is signed in to from a browser whose ``__Host-device``
cookie has not signed in to it before (the sign-in event says so). The first sign-in of a new
account is never announced (the person has just confirmed their address); a dormant one's is,
because the browsers it remembers outlive its pruned sessions. At most ``ALERTS_PER_HOUR`` of
them go out per account and hour; the hour's later ones wait for one summary sent as it ends.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, has_request_context, request, url_for

from app import audit, devices, links, mail, recovery, settings, throttle
from app.config import ALERTS_PER_HOUR, MAIL_WINDOW
from app.limits import Limit
from app.models import (
    DigestedSignIn,
    KnownDevice,
    LinkToken,
    LoginSession,
    OutboxMessage,
    User,
)
from app.sessions import rules
from app.sessions.state import Method

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
    try:
        throttle.take([_budget(user)], now)
    except throttle.Throttled:
        if _digest(user, email, row, now):
            return
    entry = _entry(row)
    subject = f"New sign-in: {entry['device']}, {ip}, {entry['when']}"
    mail.queue(email, "new_sign_in", subject, now=now, **entry)


def _budget(user_id: int) -> Limit:
    return Limit(f"mail-new_sign_in:{user_id}", ALERTS_PER_HOUR, MAIL_WINDOW)


def _entry(session: LoginSession) -> dict[str, str]:
    """What a mail says of one sign-in, with a new "This wasn't me" link for it."""
    token = links.issue(links.NOT_ME, session.user_id, session_id=session.id,
                        now=session.created_at, ttl=settings.current().policy.max_age)
    return {**recovery.described(session.created_at, session.ip_address, session.user_agent),
            "url": mail.link(url_for("auth.not_me", _anchor=token))}


def _digest(user_id: int, email: str, session: LoginSession, now: float) -> bool:
    """Add the sign-in to the summary the hour's end sends (written anew with each one, each
    sign-in with a fresh link: the earlier ones were never sent). False when that summary is
    already on its way. A summary addressed to the account's former address is left as it is
    (its links died with the change): fresh links never go to an address no longer its."""
    window_end = throttle.window_end(_budget(user_id))
    earlier = list(DigestedSignIn.select().join(
        OutboxMessage, on=DigestedSignIn.message_id == OutboxMessage.id).where(
        DigestedSignIn.user == user_id, DigestedSignIn.window_end == window_end,
        OutboxMessage.recipient == email).order_by(DigestedSignIn.id))
    sessions = [LoginSession.get_by_id(entry.session_id) for entry in earlier] + [session]
    LinkToken.delete().where(LinkToken.session.in_([s.id for s in sessions[:-1]]),
                             LinkToken.purpose == links.NOT_ME,
                             LinkToken.used_at.is_null()).execute()
    entries = [_entry(each) for each in sessions]
    subject = f"{len(entries)} more new sign-ins to your account"
    if earlier:
        message_id = earlier[0].message_id
        if not mail.requeue(message_id, "new_sign_ins", subject, entries=entries,
                            alerts=ALERTS_PER_HOUR):
            return False
    else:
        queued = mail.queue_at(window_end, email, "new_sign_ins", subject, now=now,
                               entries=entries, alerts=ALERTS_PER_HOUR)
        if queued is None:
            return False
        message_id = queued
    DigestedSignIn.create(user=user_id, session=session.id, window_end=window_end,
                          message_id=message_id)
    return True


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
