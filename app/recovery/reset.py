"""A forgotten password, reset by a mailed link (or after "This wasn't me", ``not_me``)."""

from __future__ import annotations

from flask import url_for

from app import audit, devices, links, mail, settings, throttle, tokens, users, words
from app.config import RESET_COMPARISONS
from app.db import write_transaction
from app.limits import Limit
from app.models import User
from app.passwords import check_policy
from app.recovery import described, notice, within_budget
from app.sessions import rules, store


def request_reset(email: str, *, now: float, ip: str, user_agent: str) -> None:
    """Mail a reset link to a known address; raises Throttled for a client asking too often.

    The caller answers the same either way, and an unknown address costs the same work up to
    the two rows that a known one adds (the token and the mail): the same queries, the same
    event, the same per-address budget, the mail rendered and dropped.
    """
    throttle.take(settings.current().throttles.for_reset(ip), now)
    try:
        email = users.normalise_email(email)
    except users.InvalidEmail:
        email = "invalid:" + tokens.token_hash(email)  # never an account; same work below
    with write_transaction():
        user = User.get_or_none(User.email == email)
        budget = within_budget("reset", user.id if user else email, now, recipient=email)
        audit.record(audit.PASSWORD_RESET_REQUESTED, user=user.id if user else None, ip=ip,
                     now=now)
        ttl = settings.current().password_reset_ttl
        token = links.issue(links.RESET, user.id, ttl=ttl, now=now) if user else "-" * 43
        message = ("reset", "Reset your password")
        context = dict(url=mail.link(url_for("auth.reset_password", _anchor=token)),
                       valid_for=words.duration(ttl), **described(now, ip, user_agent))
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
    limit = Limit(f"reset-same:{tokens.token_hash(token)}", RESET_COMPARISONS,
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
        User.update(password_hash=digest, password_changed_at=now, password_blocked_at=None,
                    email_verified_at=user.email_verified_at or now).where(
            User.id == user.id).execute()
        links.retire_after_credential_change(user.id, now=now)
        # The link proves the mailbox: failures that locked the account are forgotten.
        throttle.clear(settings.current().throttles.account_keys(user.email))
        store.revoke_all(user.id, reason=rules.PASSWORD_RESET, now=now, ip_address=ip)
        devices.forget_all(user.id)
        audit.record(audit.PASSWORD_RESET, user=user.id, ip=ip, now=now)
        notice(user.email, "password_reset", now=now, ip=ip, user_agent=user_agent)
    return User.get_by_id(user.id)

