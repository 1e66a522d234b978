"""An account locked by failed sign-ins: its owner is mailed, once per lock, a link that
unlocks it (the account's failures start again), so that waiting is not the only way out. A
lock by wrong second-step codes says so: whoever tried them knows the password."""

from __future__ import annotations

from flask import Flask, has_request_context, request, url_for

from app import audit, links, mail, settings, throttle, words
from app.config import UNLOCK_TTL
from app.db import write_transaction
from app.models import User
from app.recovery import can_sign_in, described, within_budget


def init_app(app: Flask) -> None:
    audit.on(audit.ACCOUNT_LOCKED, locked)


def locked(*, user: int | None, session: int | None, ip: str, now: float,
           detail: str = "") -> None:
    """Queue the unlock mail, in the transaction that records the lock (one event per lock:
    the failure that used up the account's allowance)."""
    if user is None or not has_request_context() or mail.mailer().transport is None:
        return
    owner = User.get_by_id(user)
    if not can_sign_in(owner) or not within_budget("unlock", owner.id, now,
                                                   recipient=owner.email):
        return
    token = links.issue(links.UNLOCK, owner.id, ttl=UNLOCK_TTL, now=now)
    mail.queue(owner.email, "unlock", "Your account was locked after failed sign-ins",
               now=now, url=mail.link(url_for("auth.unlock", _anchor=token)),
               valid_for=words.duration(UNLOCK_TTL), codes=detail == audit.BY_CODES,
               **described(now, ip, request.headers.get("User-Agent", "")))


def unlock(token: str, *, now: float, ip: str) -> User:
    """Spend the link and set the account's failures back to zero (those of browsers it knows
    are their own, and were never the lock)."""
    with write_transaction():
        row = links.use(token, links.UNLOCK, now=now)
        owner = User.get_by_id(row.user_id)
        throttle.clear(settings.current().throttles.account_keys(owner.email))
        audit.record(audit.ACCOUNT_UNLOCKED, user=owner.id, ip=ip, now=now)
    return owner
