"""Devices: a readable name for a User-Agent string ("Firefox 128 on Ubuntu"), and the browsers
known to have signed in to an account (their ``__Host-device`` cookie, by hash), with the name
the person gave each.

The User-Agent text stays untrusted: templates escape it like any other value. The device
cookie authenticates nothing: it only lets a browser that has signed in to an account before
be judged by its own failures there (OWASP, "Slow Down Online Guessing Attacks with Device
Cookies"), so that nobody can lock the owner out by failing from elsewhere.
"""

from __future__ import annotations

import string
import unicodedata
from functools import lru_cache

from ua_parser import parse

from app import tokens
from app.models import KnownDevice, LoginSession

DEVICE_ID_LENGTH = 43  # tokens.new_handle(): 32 random bytes, base64url
_URLSAFE = frozenset(string.ascii_letters + string.digits + "-_")
NAME_MAX = 40
# A session from before devices were recorded is its own device, keyed by its public id: never
# a cookie's hash (64 hex digits), so it can never exempt a browser from a lockout.
_OWN_DEVICE = "session:"


class InvalidName(ValueError):
    """Not a device name we keep; the message is for the person."""


@lru_cache(maxsize=1024)
def describe(user_agent: str) -> str:
    if not user_agent:
        return "Unknown device"
    result = parse(user_agent[:512])
    browser = result.user_agent
    system = result.os
    name = f"{browser.family} {browser.major}" if browser and browser.major else (
        browser.family if browser else "Unknown browser")
    return f"{name} on {system.family}" if system else name


def is_device_id(value: str) -> bool:
    """Whether ``value`` could be a device id we issued (checked before any lookup)."""
    return len(value) == DEVICE_ID_LENGTH and _URLSAFE.issuperset(value)


def throttle_id(user_id: int, device_id: str) -> str | None:
    """A short name for this browser at this account if it has signed in there before, for
    the throttle key it is judged by; None for a browser the account does not know."""
    if not is_known(user_id, device_id):
        return None
    return f"{user_id}:{tokens.token_hash(device_id)[:32]}"


def is_known(user_id: int, device_id: str) -> bool:
    """Whether this browser has signed in to the account before."""
    return is_device_id(device_id) and KnownDevice.select().where(
        KnownDevice.user == user_id,
        KnownDevice.device_hash == tokens.token_hash(device_id)).exists()


def remember(user_id: int, device_id: str, now: float, user_agent: str = "") -> None:
    """This browser has just signed in to the account: it is known there from now on, as the
    browser its User-Agent names (a name the person gave it stays)."""
    label = describe(user_agent)[:128]
    (KnownDevice.insert(user=user_id, device_hash=tokens.token_hash(device_id),
                        first_seen_at=now, last_seen_at=now, label=label)
     .on_conflict(conflict_target=[KnownDevice.user, KnownDevice.device_hash],
                  update={KnownDevice.last_seen_at: now, KnownDevice.label: label})
     .execute())


def clean_name(text: str) -> str:
    """A device name as kept: trimmed, NFC, at most NAME_MAX characters, nothing unprintable
    (control characters, bidirectional overrides); "" clears the name."""
    name = unicodedata.normalize("NFC", text.strip())
    if len(name) > NAME_MAX:
        raise InvalidName(f"Use at most {NAME_MAX} characters.")
    if not name.isprintable():
        raise InvalidName("Use letters, digits, spaces and punctuation only.")
    return name


def rename(session: LoginSession, name: str, now: float) -> bool:
    """Give the device ``session`` was started in the name ``name`` (already ``clean_name``d),
    or take its name away with "". The name stays with the browser: every session it starts
    on this account shows it. False for a browser the account no longer knows ("this wasn't
    me"): naming it must not make it known again (exempt from the account's lockout, its
    sign-ins unannounced)."""
    if session.device_hash and not session.device_hash.startswith(_OWN_DEVICE):
        return bool(KnownDevice.update(name=name).where(
            KnownDevice.user == session.user_id,
            KnownDevice.device_hash == session.device_hash).execute())
    if not session.device_hash:
        session.device_hash = _OWN_DEVICE + session.public_id
        (LoginSession.update(device_hash=session.device_hash)
         .where(LoginSession.id == session.id).execute())
    (KnownDevice.insert(user=session.user_id, device_hash=session.device_hash, name=name,
                        first_seen_at=session.created_at, last_seen_at=now,
                        label=session.device_name)
     .on_conflict(conflict_target=[KnownDevice.user, KnownDevice.device_hash],
                  update={KnownDevice.name: name})
     .execute())
    return True


def forget(user_id: int, device_hash: str) -> None:
    """This browser is no longer one the account knows: its next sign-in is announced again,
    and it is judged by the account's lockout, not by its own failures."""
    if device_hash:
        KnownDevice.delete().where(KnownDevice.user == user_id,
                                   KnownDevice.device_hash == device_hash).execute()


def forget_all(user_id: int) -> None:
    """No browser is known to the account any more (a password reset: whoever learnt the old
    password may have signed in from any of them)."""
    KnownDevice.delete().where(KnownDevice.user == user_id).execute()


def name_of(user_id: int, device_hash: str) -> str:
    """The name the person gave this browser at their account, or ""."""
    if not device_hash:
        return ""
    return KnownDevice.select(KnownDevice.name).where(
        KnownDevice.user == user_id, KnownDevice.device_hash == device_hash).scalar() or ""


def key(session: LoginSession) -> str:
    """What groups sessions into one device: their browser, or the session alone."""
    return session.device_hash or _OWN_DEVICE + session.public_id
