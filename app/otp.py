"""Pure: time-based one-time codes (RFC 6238, through ``pyotp``) and recovery codes.

A code is accepted for the current 30-second step or one step either side (clocks drift), and
only for a step later than the last one accepted: the same code is never accepted twice.
"""

from __future__ import annotations

import hmac
import secrets

import pyotp

STEP = 30
DIGITS = 6
DRIFT = 1  # steps either side of now
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
RECOVERY_LENGTH = 10  # about 49 bits each, shown as xxxxx-xxxxx


def new_secret() -> str:
    """A fresh 160-bit key, base32 (what authenticator apps take)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI a QR code carries."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=account, issuer_name=issuer)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).generate_otp(step)


def matching_step(secret: str, code: str, now: float, after: int) -> int | None:
    """The time step ``code`` belongs to, within the drift allowed and later than ``after``
    (the last step accepted); None when it matches none."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = int(now // STEP)
    found = None
    for step in range(current - DRIFT, current + DRIFT + 1):
        # Every candidate is compared, so that timing does not tell which step matched.
        if hmac.compare_digest(code_at(secret, step), code) and step > after and found is None:
            found = step
    return found


def new_recovery_codes(count: int) -> list[str]:
    def one() -> str:
        text = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        return f"{text[:5]}-{text[5:]}"

    return [one() for _ in range(count)]


def normalise_recovery_code(text: str) -> str:
    """What a recovery code is compared as: lower case, without spaces or dashes."""
    return "".join(c for c in text.lower() if c.isalnum())


def looks_like_totp(text: str) -> bool:
    code = "".join(text.split())
    return len(code) == DIGITS and code.isdigit()
