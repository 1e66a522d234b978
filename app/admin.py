"""What an administrator does to an account (``flask users ...``, ``flask sessions ...``).

Every session ends through the session store (``store.revoke_all``: immediate on every worker
and instance, the person's credential epoch moved on), with the reason ``admin``, which the
person's sessions page and timelines show as "Ended by an administrator"; every change is a
security event of theirs and a mail to them, queued in the same transaction.

A locked account cannot sign in: a password sign-in gets the same answer as a wrong password
(``users.authenticate``), and a mailed link that would sign a browser in says it is locked.
"""

from __future__ import annotations

from app import audit, recovery, users
from app.db import write_transaction
from app.models import User
from app.sessions import rules, store

LOCKED = "admin_locked"
UNLOCKED = "admin_unlocked"


class NoSuchAccount(LookupError):
    """No account has that address."""


def find(email: str) -> User:
    try:
        address = users.normalise_email(email)
    except users.InvalidEmail:
        raise NoSuchAccount(f"{email!r} is not an email address.") from None
    user = User.get_or_none(User.email == address)
    if user is None:
        raise NoSuchAccount(f"No account has the address {address}.")
    return user


def lock(user: User, reason: str, *, now: float) -> store.Counted:
    """Lock the account (with ``reason``, which the person is mailed) and end every session."""
    with write_transaction():
        User.update(locked_at=now, locked_reason=reason[:255]).where(User.id == user.id).execute()
        audit.record(LOCKED, user=user.id, now=now, ip="cli", detail=reason)
        ended = store.revoke_all(user.id, reason=rules.ADMIN, now=now, ip_address="cli")
        recovery.notice(user.email, LOCKED, now=now, ip="cli", reason=audit.printable(reason))
    return ended


def unlock(user: User, *, now: float) -> bool:
    """Unlock the account; False when it was not locked (nothing changes, nobody is mailed)."""
    with write_transaction():
        if not User.update(locked_at=None, locked_reason="").where(
                User.id == user.id, User.locked_at.is_null(False)).execute():
            return False
        audit.record(UNLOCKED, user=user.id, now=now, ip="cli")
        recovery.notice(user.email, UNLOCKED, now=now, ip="cli")
    return True


def end_all(user: User, *, now: float) -> store.Counted:
    """End every session of the person (they may sign in again at once)."""
    with write_transaction():
        ended = store.revoke_all(user.id, reason=rules.ADMIN, now=now, ip_address="cli")
        if ended.sessions:
            recovery.notice(user.email, rules.ADMIN, now=now, ip="cli")
    return ended
