"""The user service: registration, password sign-in with throttling, password change."""

from __future__ import annotations

from collections.abc import Callable

import peewee

from app import audit, devices, throttle, tokens
from app.addresses import InvalidEmail, normalise_email
from app.db import write_transaction
from app.limits import Throttles
from app.models import User
from app.passwords import Hasher, check_policy

SITE_NAME = "Gatehouse"
BLOCKED = "the password must be reset"  # the detail of a sign-in with a disowned password


class PasswordMustBeReset(Exception):
    """The right password, but its owner said someone else used it: it works no more, and
    whoever typed it is told that the password must be reset (nothing more)."""


def register(email: str, password: str, *, hasher: Hasher, now: float, ip: str = "",
             limits: Throttles | None = None,
             then: Callable[[User | None], object] = lambda user: None) -> bool:
    """Create an account; False when the email is already registered. The registration page
    does not tell the two apart, so that it does not reveal which addresses have accounts
    (its owner is mailed instead); the operator's ``create-user`` does.

    With ``limits``, each attempt is counted against the client's address before anything is
    hashed, and one over the limit raises Throttled (the operator's CLI passes none).
    ``then`` runs in the transaction that records the outcome, with the new user, or None
    when the address was taken (the mail that says so commits with it).
    """
    email = normalise_email(email)
    password = check_policy(password, context=(email, email.split("@")[0], SITE_NAME))
    if limits is not None:
        throttle.take(limits.for_registration(ip), now)
    digest = hasher.hash(password)  # hashed either way: same time for new and taken emails
    try:
        with write_transaction():
            user = User.create(public_id=tokens.new_public_id(), email=email,
                               password_hash=digest, created_at=now, password_changed_at=now)
            audit.record(audit.REGISTERED, user=user.id, ip=ip, now=now)
            then(user)
    except peewee.IntegrityError:
        with write_transaction():
            audit.record("register_existing", user=None, ip=ip, now=now)
            then(None)
        return False
    return True


LOCKED_BY_ADMIN = "locked by an administrator"  # the detail of a refused right password


def authenticate(email: str, password: str, *, hasher: Hasher, limits: Throttles, now: float,
                 ip: str = "", device_id: str = "", failure: str = audit.SIGN_IN_FAILED,
                 usable: Callable[[User], bool] = lambda user: True) -> User | None:
    """Return the user whose password this is, or None; raise Throttled when over the limits.

    The attempt is admitted before the password is checked and counted only if it fails, so
    no more than the limit are ever checked, however many arrive at once, and correct
    passwords arriving together never refuse each other. A right password for an account
    that cannot sign in yet (not ``usable``: an unconfirmed address) counts as a failure all
    the same, so that the limits do not tell it from a wrong one; the user is returned. A
    password its owner disowned counts as a failure and raises PasswordMustBeReset.
    Unknown emails cost one dummy argon2 verify, so timing does not tell them apart.
    ``device_id`` is the browser's device cookie; a wrong password is recorded as the event
    ``failure``. The failure that locks an account is recorded as ``account_locked`` (its
    owner is mailed a way out).
    """
    try:
        email = normalise_email(email)
    except InvalidEmail:
        # Never an account; hashed so that NUL or odd bytes never reach a SQL parameter.
        email = "invalid:" + tokens.token_hash(email)
    user = User.get_or_none(User.email == email)
    device = devices.throttle_id(user.id, device_id) if user else None
    keys = limits.for_sign_in(email, ip, device)
    with throttle.attempt(keys, now) as attempt:
        right = hasher.verify(user.password_hash if user else None, password)
        if (user is not None and right and usable(user) and user.password_blocked_at is None
                and user.locked_at is None):
            # The account's (or the browser's) failures start again; the address's stay.
            attempt.succeeded(clear=[limit.key for limit in keys[:-1]])
    if user is not None and any(limit.account_wide for limit in attempt.locked):
        with write_transaction():
            audit.record(audit.ACCOUNT_LOCKED, user=user.id, ip=ip, now=now)
    if user is None or not right:
        audit.record(failure, user=user.id if user else None, ip=ip, now=now)
        return None
    if user.password_blocked_at is not None:  # counted as a failure above, too
        audit.record(failure, user=user.id, ip=ip, now=now, detail=BLOCKED)
        raise PasswordMustBeReset()
    if user.locked_at is not None:  # an administrator's lock: refused like a wrong password
        audit.record(failure, user=user.id, ip=ip, now=now, detail=LOCKED_BY_ADMIN)
        return None
    if hasher.needs_rehash(user.password_hash):
        # Only if the hash is still the one checked: a password change that committed
        # meanwhile wins, and no other column (the credential epoch) is written back stale.
        User.update(password_hash=hasher.hash(password)).where(
            User.id == user.id, User.password_hash == user.password_hash).execute()
    return user


def verify_current(user_id: int, password: str, *, hasher: Hasher, limits: Throttles,
                   now: float, ip: str = "", device_id: str = "",
                   failure: str = audit.CURRENT_PASSWORD_FAILED) -> User | None:
    """Re-check the signed-in person's password; attempts count against the same limits, and
    a wrong one is recorded as ``failure`` (not as a failed sign-in)."""
    user = User.get_by_id(user_id)
    return authenticate(user.email, password, hasher=hasher, limits=limits, now=now, ip=ip,
                        device_id=device_id, failure=failure)


def change_password(user: User, new_password: str, *, hasher: Hasher, now: float,
                    ip: str = "", then: Callable[[], object] = lambda: None) -> None:
    """Set a new password (already proven: the caller verified the current one).

    ``then`` runs in the same transaction (ending the other sessions): the new password and
    its consequences commit together or not at all.
    """
    password = check_policy(new_password, context=(user.email, user.email.split("@")[0],
                                                   SITE_NAME))
    digest = hasher.hash(password)  # outside the transaction: it takes tens of milliseconds
    with write_transaction():
        User.update(password_hash=digest, password_changed_at=now, password_blocked_at=None).where(
            User.id == user.id).execute()
        audit.record(audit.PASSWORD_CHANGED, user=user.id, ip=ip, now=now)
        then()
