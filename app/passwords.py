"""Password policy and hashing: the only importer of argon2.

Policy follows NIST SP 800-63B: length is what counts (15 to 128 characters after NFC
normalisation), any Unicode, no composition rules, and known-common, sequential, keyboard-walk
and repetitive passwords are refused with the reason.

The pattern check is written here rather than taken from zxcvbn: its Python port changes
rarely, and one readable rule with one reason is enough for what NIST asks to refuse.
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
MIN_DISTINCT = 5


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


def _common(password: str, context: Iterable[str]) -> str | None:
    if not _cores(password.casefold()).isdisjoint(common_passwords()):
        return "This password appears in lists of commonly used passwords; choose another."
    return None


_PADDING = "0123456789!@#$%^&*()-_=+.,?~ "


def _cores(folded: str) -> set[str]:
    """The password and what it is built from: a word padded with digits or symbols on either
    side ("password1234567", "123456789012345"), or repeated ("passwordpassword")."""
    size = len(folded)
    lead = size - len(folded.lstrip(_PADDING))
    trail = size - len(folded.rstrip(_PADDING))
    cores = {folded.replace(" ", "")}
    for start in range(lead + 1):
        cores.update(folded[start:end] for end in range(max(start, size - trail), size + 1))
    stripped = folded[lead:size - trail] if lead < size else ""
    for unit in range(1, len(stripped) // 2 + 1):  # "passwordpassword" -> "password"
        if len(stripped) % unit == 0 and stripped[:unit] * (len(stripped) // unit) == stripped:
            cores.add(stripped[:unit])
            break
    cores.discard("")
    return cores


def _repetitive(password: str, context: Iterable[str]) -> str | None:
    if len(set(password.casefold())) < MIN_DISTINCT:  # "aaaaaaaaaaaaaaa", "121212121212121"
        return "Use more than a few different characters; a few unrelated words work well."
    return None


def _contextual(password: str, context: Iterable[str]) -> str | None:
    words = {word.casefold() for word in context if word}
    if not _cores(password.casefold()).isdisjoint(words):
        return "Don't use your email address or the site's name as your password."
    return None


# What people type without thinking: the alphabet and digits (also run together, as in
# "123456789abcdefg"), keyboard rows (QWERTY, QWERTZ, AZERTY, also row after row) and columns.
# A walk counts in either direction.
_SEQUENCES = (
    "0123456789abcdefghijklmnopqrstuvwxyz",
    "`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./",
    "1234567890qwertyuiopasdfghjklzxcvbnm", "qwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/-['=]",
)
_STEPS = frozenset((a, b) for seq in _SEQUENCES for pair in zip(seq, seq[1:], strict=False)
                   for a, b in (pair, pair[::-1]))
_SEPARATORS = " -_."
MIN_UNPATTERNED = 8  # characters outside sequences, walks and repeats


def _patterned(folded: str) -> int:
    """How many characters of ``folded`` belong to a run of three or more that walks a
    sequence or keyboard row ("abcd", "4321", "qwer", "1qaz") or repeats what came just
    before it ("aaa", "ababab", "kittenkitten")."""
    marked: set[int] = set()
    for gap in range(1, 9):
        _mark_runs(folded, marked, gap, max(2, gap))
    return len(marked)


def _mark_runs(text: str, marked: set[int], gap: int, min_links: int) -> None:
    """Mark every run of at least ``min_links`` consecutive links, where position i links to
    i - gap by repeating it or, for gap 1, by stepping along a sequence."""
    run = 0
    for i in range(gap, len(text) + 1):
        linked = i < len(text) and (text[i] == text[i - gap]
                                    or gap == 1 and (text[i - 1], text[i]) in _STEPS)
        if linked:
            run += 1
        elif run >= min_links:
            marked.update(range(i - run - gap, i))
            run = 0
        else:
            run = 0


def _predictable(password: str, context: Iterable[str]) -> str | None:
    folded = "".join(c for c in password.casefold() if c not in _SEPARATORS)
    if len(folded) - _patterned(folded) < MIN_UNPATTERNED:
        return ("This is mostly a sequence, a keyboard pattern or a repetition (like abcdef, "
                "qwerty or 121212), which is among the first things guessed; a few unrelated "
                "words work well.")
    return None


# Order matters: length is judged before anything that has to read the whole value.
CHECKS: tuple[Check, ...] = (_too_long, _too_short, _repetitive, _common, _contextual,
                             _predictable)


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
        password = normalise(password)
        if len(password) > MAX_LENGTH:  # no such password can be set: refuse before hashing
            return False
        try:
            return self._hasher.verify(stored or self._dummy, password) and bool(stored)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
