"""Two-step sign-in with an authenticator app (TOTP) and recovery codes, and the sign-ins that
wait for a code.

Setting it up stores a key unconfirmed; a correct code turns it on and makes ``RECOVERY_CODES``
single-use recovery codes (stored by hash, shown once). A password sign-in of an account with
it on is ``held``: a row, reached through a random handle the browser keeps, that becomes a
session only once a code is accepted (``prove``) within ``PENDING_SIGN_IN_TTL``. Each code is
accepted once (the last accepted time step is kept, and moved by a guarded update), and codes
count against limits like passwords, per account (with the cap of consecutive failures, whose
lock is recorded and mailed as a password's) and per address.
"""

from __future__ import annotations

import peewee

from app import audit, otp, throttle, tokens
from app.config import PENDING_SIGN_IN_TTL, RECOVERY_CODES
from app.db import write_transaction
from app.limits import Throttles
from app.models import PendingSignIn, RecoveryCode, TwoFactor, User


def is_on(user_id: int) -> bool:
    return TwoFactor.select().where(TwoFactor.user == user_id,
                                    TwoFactor.confirmed_at.is_null(False)).exists()


def unconfirmed_secret(user_id: int, now: float) -> str:
    """The key being set up (a new one unless one is waiting); never that of an app that is
    already on."""
    row = TwoFactor.get_or_none(TwoFactor.user == user_id)
    if row is not None and row.confirmed_at is not None:
        raise ValueError("two-step sign-in is already on")
    if row is not None:
        return str(row.secret)
    secret = otp.new_secret()
    try:
        TwoFactor.create(user=user_id, secret=secret, created_at=now)
    except peewee.IntegrityError:  # set up in another tab at the same instant
        return str(TwoFactor.get(TwoFactor.user == user_id).secret)
    return secret


def turn_on(user_id: int, code: str, *, now: float, ip: str = "",
            session_id: int | None = None) -> list[str] | None:
    """Turn it on when ``code`` is right for the key being set up; the recovery codes, in
    the clear this once, or None when the code is wrong."""
    row = TwoFactor.get_or_none(TwoFactor.user == user_id, TwoFactor.confirmed_at.is_null())
    step = row and otp.matching_step(row.secret, code, now, row.last_step)
    if row is None or step is None:
        return None
    codes = otp.new_recovery_codes(RECOVERY_CODES)
    with write_transaction():
        if not TwoFactor.update(confirmed_at=now, last_step=step).where(
                TwoFactor.id == row.id, TwoFactor.confirmed_at.is_null()).execute():
            return None
        RecoveryCode.delete().where(RecoveryCode.user == user_id).execute()
        RecoveryCode.insert_many([
            {"user": user_id, "code_hash": tokens.token_hash(otp.normalise_recovery_code(c))}
            for c in codes]).execute()
        audit.record(audit.TWO_STEP_ON, user=user_id, session=session_id, ip=ip, now=now)
    return codes


def turn_off(user_id: int, *, now: float, ip: str = "", session_id: int | None = None) -> None:
    with write_transaction():
        removed = TwoFactor.delete().where(TwoFactor.user == user_id).execute()
        RecoveryCode.delete().where(RecoveryCode.user == user_id).execute()
        PendingSignIn.delete().where(PendingSignIn.user == user_id).execute()
        if removed:
            audit.record(audit.TWO_STEP_OFF, user=user_id, session=session_id, ip=ip, now=now)


def recovery_codes_left(user_id: int) -> int:
    return int(RecoveryCode.select().where(RecoveryCode.user == user_id,
                                           RecoveryCode.used_at.is_null()).count())


# --- the second step of a sign-in -------------------------------------------------------------


def hold(user: User, method: str, target: str, *, now: float) -> str:
    """A sign-in waiting for a code; the handle the browser keeps."""
    handle = tokens.new_handle()
    prune(now)
    PendingSignIn.create(handle_hash=tokens.token_hash(handle), user=user.id, method=method,
                         target=target[:2048], expires_at=now + PENDING_SIGN_IN_TTL)
    return handle


def held(handle: str, now: float) -> PendingSignIn | None:
    row = PendingSignIn.get_or_none(PendingSignIn.handle_hash == tokens.token_hash(handle))
    return row if row is not None and row.expires_at > now else None


def release(pending: PendingSignIn) -> bool:
    """End the wait (once: False when another request already did)."""
    return bool(PendingSignIn.delete().where(PendingSignIn.id == pending.id).execute())


def prove(user: User, code: str, *, limits: Throttles, now: float, ip: str = "") -> bool:
    """Whether ``code`` (from the app, or a recovery code) proves ``user``'s second step.

    Admitted before it is checked and counted when wrong, like a password (Throttled beyond
    the limits); a success sets the account's count back to zero.
    """
    keys = limits.for_second_step(user.email, ip)
    with throttle.attempt(keys, now) as attempt:
        if otp.looks_like_totp(code):
            accepted = _app_code(user.id, code, now)
        else:
            accepted = _recovery_code(user, code, now=now, ip=ip)
        if accepted:  # the account's failures start again; the address's stay
            attempt.succeeded(clear=[limit.key for limit in keys[:-1]])
    if any(limit.account_wide for limit in attempt.locked):  # its owner is mailed a way out
        with write_transaction():
            audit.record(audit.ACCOUNT_LOCKED, user=user.id, ip=ip, now=now, detail=audit.BY_CODES)
    if not accepted:
        audit.record(audit.TWO_STEP_FAILED, user=user.id, ip=ip, now=now)
    return accepted


def _app_code(user_id: int, code: str, now: float) -> bool:
    row = TwoFactor.get_or_none(TwoFactor.user == user_id, TwoFactor.confirmed_at.is_null(False))
    step = row and otp.matching_step(row.secret, code, now, row.last_step)
    if row is None or step is None:
        return False
    # Guarded: of two requests with the same code at once, one moves the step, one is refused.
    return bool(TwoFactor.update(last_step=step).where(
        TwoFactor.id == row.id, TwoFactor.last_step < step).execute())


def _recovery_code(user: User, code: str, *, now: float, ip: str) -> bool:
    digest = tokens.token_hash(otp.normalise_recovery_code(code))
    with write_transaction():
        used = RecoveryCode.update(used_at=now).where(
            RecoveryCode.user == user.id, RecoveryCode.code_hash == digest,
            RecoveryCode.used_at.is_null()).execute()
        if used:
            audit.record(audit.RECOVERY_CODE_USED, user=user.id, ip=ip, now=now,
                         detail=str(recovery_codes_left(user.id)))
    return bool(used)


def prune(now: float) -> int:
    removed: int = PendingSignIn.delete().where(PendingSignIn.expires_at < now).execute()
    return removed
