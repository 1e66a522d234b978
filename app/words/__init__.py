"""Every word people read about their sessions, in one place: why a session ended, what each
security event was, how a session started, what ended it, and how long things take.

Pure: codes in, sentences out. Templates reach these through ``app.templating``; mails and
flashes through the functions below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from app.sessions import rules
from app.sessions.state import Method
from app.words.notices import NOTICES, USED_TWICE, Notice

__all__ = ["NOTICES", "USED_TWICE", "Notice"]  # the security mails' words: their own module


@dataclass(frozen=True)
class EndReason:
    """The words for one end reason: ``label`` and ``explanation`` on the sessions page,
    ``message`` to the person whose session it was (a flash on the next page, and the JSON
    ``message``), ``ended_by`` completing "refused 2 minutes after …" on a timeline.
    ``alert`` marks the reasons that may mean someone else has the cookies."""

    label: str
    message: str
    ended_by: str
    alert: bool = False
    explanation: str = ""


_ELSEWHERE = "This session was signed out from another device."
_BY_YOU = "you signed it out"
END_REASONS: dict[str, EndReason] = {
    rules.SIGNED_OUT: EndReason("Signed out", "You have signed out.", _BY_YOU),
    rules.REVOKED: EndReason("Signed out by you", _ELSEWHERE, _BY_YOU),
    rules.REVOKED_OTHERS: EndReason("Signed out by you (all other sessions)", _ELSEWHERE,
                                    _BY_YOU),
    rules.PASSWORD_CHANGED: EndReason(
        "Password changed", "Your password was changed, so this session was ended.",
        "your password change ended it"),
    rules.REUSE_DETECTED: EndReason(
        USED_TWICE,
        "You were signed out because this session's sign-in cookie was used twice, so someone "
        "may have a copy of it. Sign in again; if you don't know why, change your password.",
        "it was ended because a copy of it was used", alert=True,
        explanation="Its sign-in cookie was used again from {address} after it had already "
        "been replaced, so two browsers had it. Gatehouse signed the session out so that "
        "neither can use it. If you don't recognise this, change your password."),
    rules.PASSWORD_RESET: EndReason(
        "Password reset", "Your password was reset, so this session was ended.",
        "a password reset ended it"),
    rules.NOT_ME: EndReason(
        "Ended from a \"This wasn't me\" mail",
        "This session was ended from the \"This wasn't me\" link in a mail.",
        "you ended it from a mail", alert=True,
        explanation="The account's owner said this sign-in was not theirs, from the link in "
        "the mail that announced it."),
    rules.EMAIL_RESTORED: EndReason(
        "Change of address undone",
        "A change of your account's address was undone from the old address, so every "
        "session was signed out.",
        "undoing a change of address ended it", alert=True,
        explanation="The account's address was put back from a link mailed to the old one, "
        "which signs out every session."),
    rules.ACCOUNT_DELETED: EndReason(
        "Account deleted", "Your account was deleted, so this session was ended.",
        "deleting the account ended it"),
    rules.IDLE_TIMEOUT: EndReason(
        "Inactive too long", "Your session ended after a period of inactivity.",
        "it timed out"),
    rules.EXPIRED: EndReason("Reached its maximum age", "Your session reached its maximum age.",
                             "it expired"),
    rules.SESSION_LIMIT: EndReason(
        "Too many sessions: the one unused longest was signed out",
        "This session was signed out because your account signed in on more devices than it "
        "may keep at once; the session unused for longest ends first.",
        "it was signed out to make room for a newer one"),
    rules.ADMIN: EndReason(
        "Ended by an administrator",
        "An administrator signed out this session. If you don't know why, contact us.",
        "an administrator ended it", alert=True,
        explanation="An administrator of this site signed out the session."),
}
UNKNOWN_END = EndReason("Ended", "Your session has ended.", "it ended")


def end_reason(reason: str | None) -> EndReason:
    return END_REASONS.get(reason or "", UNKNOWN_END)


# Why a request was not signed in although its session goes on (the JSON ``reason``).
KEY_MISSING_MESSAGE = ("This browser could not prove it holds the key this session is bound "
                       "to, so the session was not renewed here. Sign in again.")


def not_signed_in(reason: str) -> str:
    """The message for a request refused with ``reason``: an end reason's, or a refusal's."""
    return KEY_MISSING_MESSAGE if reason == rules.KEY_MISSING else end_reason(reason).message


# How a session started, first on its timeline.
STARTS: dict[str, str] = {Method.PASSWORD: "Signed in with the password",
          Method.RESET: "Signed in with a new password, from a password reset link",
          Method.PASSKEY: "Signed in with a passkey",
          Method.APP: "Signed in to an app, allowed from a signed-in browser"}
# The same, briefly, on a session's card (nothing for the password: most sessions start so).
STARTED_WITH: dict[str, str] = {Method.PASSKEY: "with a passkey",
                                Method.RESET: "with a password reset link"}

# The security activity's words: an ended session's event is named by its end reason's label.
EVENT_NAMES = {
    **{reason: words.label for reason, words in END_REASONS.items()},
    "sign_in": "Signed in",
    "sign_in_failed": "Failed sign-in attempt",
    "registered": "Account created",
    "email_verified": "Email address confirmed",
    "email_changed": "Email address changed",
    "email_restored": "Change of email address undone from the old address",
    "password_reset_requested": "Password reset requested",
    "password_changed": "Password changed",
    "csrf_failed": "Refused a form from another site",
    "throttled": "Too many attempts",
    "account_locked": "Locked after failed sign-ins",
    "account_unlocked": "Unlocked with the mailed link",
    "reauth_failed": "Wrong password when confirming an action",
    "current_password_failed": "Wrong current password on the password or email form",
    "reauthenticated": "Password confirmed for an action",
    "address_changed": "Used from a new address",
    "device_changed": "Used from a different browser",
    "refused_use": "Refused a request with an ended session's cookie",
    "key_bound": "Bound to this device's key",
    "key_missing": "Refused a copy without this device's key",
    "device_named": "Device renamed",
    "password_blocked": "Password stopped from a \"This wasn't me\" mail: it must be reset",
    "passkey_added": "Passkey added",
    "passkey_removed": "Passkey removed",
    "passkey_renamed": "Passkey renamed",
    "passkey_failed": "Refused a passkey",
    "two_step_on": "Two-step sign-in turned on",
    "two_step_off": "Two-step sign-in turned off",
    "two_step_failed": "Wrong code at two-step sign-in",
    "recovery_code_used": "Recovery code used",
    "admin_locked": "Account locked by an administrator",
    "admin_unlocked": "Account unlocked by an administrator",
}

# Development opened over plain http from another device: why no form works, and what to do.
INSECURE_ORIGIN = ("This site is open over plain http at an address other than this computer's, "
                   "where browsers refuse its sign-in cookies, so no form here can work. Open "
                   "{local} on the computer that runs it, or serve it over HTTPS (the README "
                   "shows how) to use it from another device.")

# What a sign-in with a disowned password is told: nothing about who disowned it, or why.
PASSWORD_MUST_BE_RESET = ("The password of this account must be reset before anyone can sign "
                          "in with it. Ask for a reset link: it is mailed to the account's "
                          "address.")

# What a locked account's owner reads where a sign-in would have started a session.
LOCKED_BY_ADMIN = ("This account is locked. Check your mail for why and what to do, or "
                  "contact us.")


NAMED_IN_DETAIL = frozenset({"passkey_added", "passkey_removed", "passkey_renamed"})


def event_label(kind: str, detail: str = "") -> str:
    """An activity row's words: the kind's name, with the passkey it concerns, and a
    confirmation said as it was given."""
    if kind == "reauthenticated" and detail == Method.PASSKEY:
        return "Passkey used to confirm an action"
    label = EVENT_NAMES.get(kind, kind)
    return f"{label}: {detail}" if kind in NAMED_IN_DETAIL and detail else label


_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600),
          ("minute", 60), ("second", 1))


def plural(count: int, noun: str) -> str:
    """ "1 session", "1,204 sessions"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def span(seconds: float) -> str:
    """A length of time in its largest whole unit, rounded down: "2 minutes", "1 day"."""
    for unit, size in _UNITS[2:]:
        if seconds >= size:
            return plural(int(seconds // size), unit)
    return "less than a second"


def in_words(seconds: int) -> str:
    """A wait, rounded up so that it is never too early: "45 seconds", "4 minutes",
    "2 hours", "30 days"."""
    for unit, size, below in (("second", 1, 60), ("minute", 60, 3600),
                              ("hour", 3600, 2 * 86400), ("day", 86400, math.inf)):
        if seconds < below:
            return plural(math.ceil(seconds / size), unit)
    raise AssertionError("unreachable: the last unit has no bound")


def duration(seconds: int) -> str:
    """A configured length of time, in the unit it was most likely set in: "14 days",
    "10 minutes", "90 seconds"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0 or seconds >= 10 * size:
            return plural(round(seconds / size), unit)
    return f"{seconds} seconds"


def ago(timestamp: float, now: float) -> str:
    """``timestamp`` in people's terms: "3 minutes ago", "in 29 days", "just now".
    static/moments.js words it the same way when it refreshes the text."""
    seconds = now - timestamp
    for unit, size in _UNITS[:-1]:
        count = int(abs(seconds) // size)
        if count:
            words = plural(count, unit)
            return f"{words} ago" if seconds > 0 else f"in {words}"
    return "just now"


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%d %b %Y, %H:%M UTC")


def iso(timestamp: float) -> str:
    """ISO 8601 in UTC, to the second: "2026-12-07T09:30:00Z"."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")
