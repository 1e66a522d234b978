"""Registering, and proving the address: the link mailed to it, with the account's password."""

from __future__ import annotations

from flask import url_for

from app import audit, links, mail, settings, users, words
from app.config import VERIFY_TTL
from app.db import write_transaction
from app.models import User
from app.recovery import described, within_budget


def send_verification(user: User, *, now: float, ip: str, user_agent: str) -> None:
    """Mail a link that confirms ``user``'s address (inside the caller's transaction)."""
    if not within_budget("verify", user.id, now, recipient=user.email):
        return
    token = links.issue(links.VERIFY, user.id, ttl=VERIFY_TTL, now=now, email=user.email)
    mail.queue(user.email, "verify", "Confirm your email address", now=now,
               url=mail.link(url_for("auth.verify_email", _anchor=token)),
               valid_for=words.duration(VERIFY_TTL), **described(now, ip, user_agent))


def register(email: str, password: str, *, now: float, ip: str, user_agent: str) -> None:
    """Create the account and mail its verification link; for an address that already has an
    account, mail its owner instead. The caller answers both the same way."""
    def then(user: User | None) -> None:
        if user is None:
            owner = User.get(User.email == users.normalise_email(email))
            if within_budget("taken", owner.id, now, recipient=owner.email):
                mail.queue(owner.email, "register_taken", "Someone tried to register with your "
                           "address", now=now, login_url=mail.link(url_for("auth.login")),
                           forgot_url=mail.link(url_for("auth.forgot")),
                           **described(now, ip, user_agent))
        elif settings.current().email_verification:
            send_verification(user, now=now, ip=ip, user_agent=user_agent)

    users.register(email, password, hasher=settings.current().hasher, now=now, ip=ip,
                   limits=settings.current().throttles, then=then)


def resend_verification(user: User, *, now: float, ip: str, user_agent: str) -> None:
    with write_transaction():
        send_verification(user, now=now, ip=ip, user_agent=user_agent)


def verify_email(token: str, password: str, *, now: float, ip: str,
                 device_id: str) -> User | None:
    """Confirm the address a verification link went to, if ``password`` is the account's;
    None when it is not (the attempt counts against the sign-in throttles).

    The link proves the mailbox and the password proves who registered: both are needed, so
    that an account someone else registered with your address, under their password, never
    becomes yours by pressing a button in a mail you did not expect.
    """
    row = links.check(token, links.VERIFY, now=now)
    config = settings.current()
    if users.verify_current(row.user_id, password, hasher=config.hasher,
                            limits=config.throttles, now=now, failure=audit.SIGN_IN_FAILED,
                            ip=ip, device_id=device_id) is None:
        return None
    with write_transaction():
        links.use(token, links.VERIFY, now=now)
        mark_verified(row.user_id, now=now)
    return User.get_by_id(row.user_id)


def mark_verified(user_id: int, *, now: float) -> None:
    User.update(email_verified_at=now).where(
        (User.id == user_id) & User.email_verified_at.is_null()).execute()
    audit.record(audit.EMAIL_VERIFIED, user=user_id, now=now)
