"""Devices: a readable name for a User-Agent string ("Firefox 128 on Ubuntu"), and the browsers
known to have signed in to an account (their ``__Host-device`` cookie, by hash).

The User-Agent text stays untrusted: templates escape it like any other value. The device
cookie authenticates nothing: it only lets a browser that has signed in to an account before
be judged by its own failures there (OWASP, "Slow Down Online Guessing Attacks with Device
Cookies"), so that nobody can lock the owner out by failing from elsewhere.
"""

from __future__ import annotations

import string
from functools import lru_cache

from ua_parser import parse

from app import tokens
from app.models import KnownDevice

DEVICE_ID_LENGTH = 43  # tokens.new_handle(): 32 random bytes, base64url
_URLSAFE = frozenset(string.ascii_letters + string.digits + "-_")


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


def remember(user_id: int, device_id: str, now: float) -> None:
    """This browser has just signed in to the account: it is known there from now on."""
    (KnownDevice.insert(user=user_id, device_hash=tokens.token_hash(device_id),
                        first_seen_at=now, last_seen_at=now)
     .on_conflict(conflict_target=[KnownDevice.user, KnownDevice.device_hash],
                  update={KnownDevice.last_seen_at: now})
     .execute())
