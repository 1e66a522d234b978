"""Password policy and hashing: the only importer of argon2.

Policy follows NIST SP 800-63B: length is what counts (15 to 128 characters after NFC
normalisation), any Unicode, no composition rules, and known-common passwords are refused
with the reason.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 15
MAX_LENGTH = 128


class PasswordRejected(ValueError):
    """The proposed password breaks the policy; the message says why, for the person."""


@dataclass(frozen=True)
class Argon2Profile:
    time_cost: int
    memory_kib: int
    parallelism: int


def normalise(password: str) -> str:
    return unicodedata.normalize("NFC", password)


Check = Callable[[str, Iterable[str]], "str | None"]


def _too_short(password: str, context: Iterable[str]) -> str | None:
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters; a few unrelated words work well."
    return None


def _too_long(password: str, context: Iterable[str]) -> str | None:
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    return None


def _repetitive(password: str, context: Iterable[str]) -> str | None:
    if any(len(core) < 4 for core in _cores(password.casefold())):
        return "This password repeats a few characters over and over; choose another."
    return None


def _common(password: str, context: Iterable[str]) -> str | None:
    if any(core in common_passwords() for core in _cores(password.casefold())):
        return "This password appears in lists of commonly used passwords; choose another."
    return None


def _cores(folded: str) -> set[str]:
    """The password and what it is built from: "password1234567" -> "password" too."""
    stripped = folded.strip(_PADDING)
    cores = {folded, stripped, folded.replace(" ", "")}
    for size in range(1, len(stripped) // 2 + 1):  # "passwordpassword" -> "password"
        unit = stripped[:size]
        if len(stripped) % size == 0 and unit * (len(stripped) // size) == stripped:
            cores.add(unit)
            break
    return cores


_PADDING = "0123456789!@#$%^&*()-_=+.,?~ "


def _contextual(password: str, context: Iterable[str]) -> str | None:
    cores = _cores(password.casefold())
    if any(word and word.casefold() in cores for word in context):
        return "Don't use your email address or the site's name as your password."
    return None


# Order matters: length is judged before anything that has to read the whole value.
CHECKS: tuple[Check, ...] = (_too_long, _too_short, _repetitive, _common, _contextual)


def check_policy(password: str, context: Iterable[str] = ()) -> str:
    """Return the normalised password, or raise PasswordRejected with the first reason."""
    if len(password) > MAX_LENGTH * 4:  # refuse absurd input before normalising it
        raise PasswordRejected(f"Use at most {MAX_LENGTH} characters.")
    password = normalise(password)
    context = list(context)
    for check in CHECKS:
        reason = check(password, context)
        if reason:
            raise PasswordRejected(reason)
    return password


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("app").joinpath("common-passwords.txt").read_text("utf-8")
    lines = (line.strip().casefold() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


class Hasher:
    """argon2id with the configured profile; a dummy verify keeps unknown emails slow too."""

    def __init__(self, profile: Argon2Profile) -> None:
        self._hasher = PasswordHasher(
            time_cost=profile.time_cost, memory_cost=profile.memory_kib,
            parallelism=profile.parallelism, type=Type.ID,
        )
        self._dummy = self._hasher.hash("gatehouse dummy password for timing")

    def hash(self, password: str) -> str:
        return self._hasher.hash(normalise(password))

    def verify(self, stored: str | None, password: str) -> bool:
        """Check ``password``; with no stored hash, spend the same time and return False."""
        if len(password) > MAX_LENGTH * 4:
            return False
        try:
            return self._hasher.verify(stored or self._dummy, normalise(password)) and bool(stored)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
