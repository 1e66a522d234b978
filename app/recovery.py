"""Account recovery by email: address verification, password reset, change of address.

Every mail is queued in the transaction of the change that causes it, and every link is a
single-use token (``links``). The functions that answer a person who is not signed in answer
the same whether or not the address has an account; what differs happens only in the mail.
"""

from __future__ import annotations

import peewee
from flask import url_for

from app import (
    audit,
    devices,
    links,
    mail,
    session_changes,
    session_rules,
    session_store,
    settings,
    throttle,
    tokens,
    users,
)
from app.db import write_transaction
from app.models import LoginSession, User
from app.passwords import check_policy

VERIFY_TTL = 3 * 24 * 3600  # a verification link: long enough to find the mail after a weekend
RESET_LIMIT_IP = 10  # reset requests per client address per window (HTTP 429 beyond)
RESET_COMPARISONS = 5  # new passwords one reset link may compare with the current one
MAILS_PER_ACCOUNT = 3  # mails of one kind to one account per hour, beyond which none is sent
MAIL_WINDOW = 3600


def can_sign_in(user: User) -> bool:
    return user.email_verified_at is not None or not settings.current().email_verification


def _within_budget(kind: str, account: int | str, now: float) -> bool:
    """Count one mail of ``kind`` to this account (an id, or an address); False once the
    hour's budget is spent, so that nobody can flood a person's mailbox through our forms.
    Counted before it is judged, like sign-in attempts: requests at the same instant cannot
    all see the budget unspent."""
    try:
        throttle.take([throttle.Limit(f"mail-{kind}:{account}", MAILS_PER_ACCOUNT,
                                      MAIL_WINDOW)], now)
    except throttle.Throttled:
        return False
    return True


def described(now: float, ip: str, user_agent: str, device_name: str = "") -> dict:
    """When, from which address and device: what every mail says about its cause. The device
    is the name the person gave it, where they did, and the browser its User-Agent names."""
    from app.account import when

    device = devices.describe(user_agent)
    if device_name:
        device = f"{device_name} ({device})"
    return {"when": when(now), "ip": ip, "device": device}


def _valid_for(seconds: int) -> str:
    from app.account import duration

    return duration(seconds)


# --- verification ----------------------------------------------------------------------------


def send_verification(user: User, *, now: float, ip: str, user_agent: str) -> None:
    """Mail a link that confirms ``user``'s address (inside the caller's transaction)."""
    if not _within_budget("verify", user.id, now):
        return
    token = links.issue(links.VERIFY, user.id, ttl=VERIFY_TTL, now=now, email=user.email)
    mail.queue(user.email, "verify", "Confirm your email address", now=now,
               url=mail.link(url_for("auth.verify_email", token=token)),
               valid_for=_valid_for(VERIFY_TTL), **described(now, ip, user_agent))


def register(email: str, password: str, *, now: float, ip: str, user_agent: str) -> None:
    """Create the account and mail its verification link; for an address that already has an
    account, mail its owner instead. The caller answers both the same way."""
    def then(user: User | None) -> None:
        if user is None:
            owner = User.get(User.email == users.normalise_email(email))
            if _within_budget("taken", owner.id, now):
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
                            limits=config.throttles, now=now, failure=users.SIGN_IN_FAILED,
                            ip=ip, device_id=device_id) is None:
        return None
    with write_transaction():
        links.use(token, links.VERIFY, now=now)
        mark_verified(row.user_id, now=now)
    return User.get_by_id(row.user_id)


def mark_verified(user_id: int, *, now: float) -> None:
    User.update(email_verified_at=now).where(
        (User.id == user_id) & User.email_verified_at.is_null()).execute()
    audit.record("email_verified", user=user_id, now=now)


# --- password reset --------------------------------------------------------------------------


def request_reset(email: str, *, now: float, ip: str, user_agent: str) -> None:
    """Mail a reset link to a known address; raises Throttled for a client asking too often.

    The caller answers the same either way, and an unknown address costs the same work up to
    the two rows that a known one adds (the token and the mail): the same queries, the same
    event, the same per-address budget, the mail rendered and dropped.
    """
    guard = [throttle.Limit(f"reset-ip:{ip}", RESET_LIMIT_IP, settings.current().throttles.window)]
    throttle.check(guard, now)
    throttle.fail(guard, now)
    try:
        email = users.normalise_email(email)
    except users.InvalidEmail:
        email = "invalid:" + tokens.token_hash(email)  # never an account; same work below
    with write_transaction():
        user = User.get_or_none(User.email == email)
        budget = _within_budget("reset", email, now)
        audit.record("password_reset_requested", user=user.id if user else None, ip=ip, now=now)
        ttl = settings.current().password_reset_ttl
        token = links.issue(links.RESET, user.id, ttl=ttl, now=now) if user else "-" * 43
        message = ("reset", "Reset your password")
        context = dict(url=mail.link(url_for("auth.reset_password", token=token)),
                       valid_for=_valid_for(ttl), **described(now, ip, user_agent))
        # An unconfirmed account gets a reset link too: it proves the mailbox and replaces
        # whatever password the account was registered with, perhaps by someone else.
        if user is None or not budget:
            mail.render(*message, **context)
        else:
            mail.queue(user.email, *message, now=now, **context)


def is_current_password(token: str, user: User, password: str, *, now: float) -> bool:
    """Whether ``password`` is the account's current one, which a reset must change too.

    One argon2 verify, counted per link before it runs (Throttled beyond RESET_COMPARISONS):
    whoever holds a link must not get an unlimited oracle for the current password, and a
    person locked out of signing in is not refused here by the sign-in throttles.
    """
    limit = throttle.Limit(f"reset-same:{tokens.token_hash(token)}", RESET_COMPARISONS,
                           settings.current().password_reset_ttl)
    throttle.take([limit], now)
    return settings.current().hasher.verify(user.password_hash, password)


def reset_password(token: str, new_password: str, *, now: float, ip: str,
                   user_agent: str) -> User:
    """Set a new password through a reset link and end every session of the account.

    The link proves the mailbox, so an unconfirmed address is confirmed by it too.
    """
    user = User.get_by_id(links.check(token, links.RESET, now=now).user_id)
    password = check_policy(new_password, context=(user.email, user.email.split("@")[0],
                                                   users.SITE_NAME))
    # Hashed outside the transaction: it takes tens of milliseconds.
    digest = settings.current().hasher.hash(password)
    with write_transaction():
        links.use(token, links.RESET, now=now)
        User.update(password_hash=digest, password_changed_at=now,
                    email_verified_at=user.email_verified_at or now).where(
            User.id == user.id).execute()
        links.retire_after_credential_change(user.id, now=now)
        session_store.revoke_all(user.id, reason=session_rules.PASSWORD_RESET, now=now,
                                 ip_address=ip)
        audit.record("password_reset", user=user.id, ip=ip, now=now)
        notice(user.email, "Your password was reset",
               "The password of your Gatehouse account was reset with a link we mailed you, "
               "and every session was signed out.",
               "If this was you, you need do nothing. If it wasn't, someone can read your "
               "mail: secure your email account, then reset your password again.",
               now=now, ip=ip, user_agent=user_agent)
    return User.get_by_id(user.id)


def notice(to: str, subject: str, what: str, todo: str, *, now: float, ip: str = "",
           user_agent: str = "", forgot: bool = True, change_url: str = "",
           device_name: str = "") -> None:
    """A security notice: what happened, when, from where (``device_name``: the name the
    person gave that browser), and what to do (with a button to reset the password, and one
    to change it when ``change_url`` is given)."""
    forgot_url = mail.link(url_for("auth.forgot")) if forgot else ""
    mail.queue(to, "notice", subject, now=now, what=what, todo=todo, forgot_url=forgot_url,
               change_url=change_url, **described(now, ip, user_agent, device_name))


# --- change of address -----------------------------------------------------------------------


def request_email_change(user_id: int, new_email: str, *, now: float, ip: str,
                         user_agent: str) -> None:
    """Mail a confirmation link to the new address; the old one stays until it is used."""
    with write_transaction():
        user = User.get_by_id(user_id)
        if User.select().where(User.email == new_email).exists():
            return  # answered like any other address; its owner is not told who asked
        token = links.issue(links.NEW_EMAIL, user.id, ttl=VERIFY_TTL, now=now, email=new_email)
        mail.queue(new_email, "verify", "Confirm your new email address", now=now,
                   url=mail.link(url_for("auth.confirm_email", token=token)), change=True,
                   valid_for=_valid_for(VERIFY_TTL), **described(now, ip, user_agent))


def end_unknown_session(token: str, *, now: float, ip: str) -> User:
    """"This wasn't me": end the session a new-sign-in mail was about, whoever asks, with
    every other session that browser has started since (only its first was announced), and
    forget the browser: were it to sign in again, that would be announced too."""
    with write_transaction():
        row = links.use(token, links.NOT_ME, now=now)
        session = LoginSession.get_by_id(row.session_id)
        devices.forget(row.user_id, session.device_hash)
        try:
            session_store.revoke(session.public_id, user_id=row.user_id,
                                 reason=session_rules.NOT_ME, now=now, ip_address=ip)
        except session_rules.SessionNotFound:
            pass  # it had ended already: signed out, expired, or ended from another mail
        session_store.revoke_device(row.user_id, session.device_hash,
                                    reason=session_rules.NOT_ME, now=now, ip_address=ip)
    return User.get_by_id(row.user_id)


class AddressTaken(links.LinkError):
    message = "That address now belongs to another account, so it cannot be yours as well."


def confirm_email_change(token: str, *, now: float, ip: str, user_agent: str) -> User:
    try:
        with write_transaction():
            row = links.use(token, links.NEW_EMAIL, now=now)
            old = User.get_by_id(row.user_id).email
            User.update(email=row.email, email_verified_at=now).where(
                User.id == row.user_id).execute()
            links.retire_after_credential_change(row.user_id, now=now)
            # The address is part of what each worker remembers of the person's sessions.
            session_changes.announce(user_id=row.user_id, now=now)
            audit.record("email_changed", user=row.user_id, ip=ip, now=now)
            notice(old, "Your email address was changed",
                   f"The address of your Gatehouse account was changed from {old} to "
                   f"{row.email}. Mail about your account now goes to the new address.",
                   "If this wasn't you, reset your password now and then contact us.",
                   now=now, ip=ip, user_agent=user_agent)
    except peewee.IntegrityError:
        raise AddressTaken() from None
    return User.get_by_id(row.user_id)
