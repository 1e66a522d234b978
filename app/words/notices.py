"""The words of the security mails: what happened, and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass

from app.sessions import rules

# Reuse detection in people's words, wherever it is shown: the sessions page, the message at
# sign-in, the JSON ``message`` and the mail.
USED_TWICE = "Signed out: its sign-in cookie was used twice"


@dataclass(frozen=True)
class Notice:
    """A security mail: what happened and what to do (``str.format`` fields in braces)."""

    subject: str
    what: str
    todo: str


NOTICES = {
    "password_reset": Notice(
        "Your password was reset",
        "The password of your Gatehouse account was reset with a link we mailed you, and every "
        "session was signed out.",
        "If this was you, you need do nothing. If it wasn't, someone can read your mail: "
        "secure your email account, then reset your password again."),
    "password_changed": Notice(
        "Your password was changed",
        "The password of your Gatehouse account was changed, and every other session was "
        "signed out.",
        "If this was you, you need do nothing. If it wasn't, reset your password now: that "
        "signs out whoever changed it."),
    "email_changed": Notice(
        "Your email address was changed",
        "The address of your Gatehouse account was changed from {old} to {new}. Mail about "
        "your account now goes to the new address, password resets included.",
        "If this wasn't you, undo it with the link below (it works for {valid_for}): your "
        "address comes back, every session is signed out, and you choose a new password."),
    "account_deleted": Notice(
        "Your Gatehouse account was deleted",
        "Your Gatehouse account was deleted at your request: every session was signed out, "
        "and everything it held (its sessions, its security activity, the browsers it knew) "
        "was erased. This is the last message we send to this address.",
        "If this wasn't you, someone could sign in to your account: you can create a new one "
        "with this address at any time."),
    "passkey_added": Notice(
        "A passkey was added to your account",
        "The passkey \u201c{name}\u201d was added to your Gatehouse account: it signs in "
        "without the password.",
        "If this wasn't you, remove it on the passkeys page and change your password."),
    "passkey_removed": Notice(
        "A passkey was removed from your account",
        "The passkey \u201c{name}\u201d was removed from your Gatehouse account and no longer "
        "signs in.",
        "If this wasn't you, change your password now."),
    "two_step_on": Notice(
        "Two-step sign-in was turned on",
        "Signing in to your Gatehouse account with the password now also asks for a code "
        "from an authenticator app.",
        "If this wasn't you, change your password now and then contact us."),
    "two_step_off": Notice(
        "Two-step sign-in was turned off",
        "Signing in to your Gatehouse account with the password no longer asks for a code.",
        "If this wasn't you, change your password now and turn two-step sign-in on again."),
    "recovery_code_used": Notice(
        "A recovery code was used",
        "Someone signed in to your Gatehouse account with the password and one of your "
        "recovery codes. {left} of them are left.",
        "If this wasn't you, change your password now: whoever it was knows it and has your "
        "codes."),
    rules.REUSE_DETECTED: Notice(
        f"A session was {USED_TWICE.lower()}",
        "Gatehouse signed out one of your sessions because its sign-in cookie was used twice, "
        "so someone may have a copy of it. The address shown is the one that used it after it "
        "had been replaced; the device is the session's.",
        "If you don't know why, change your password; if you can't sign in, reset it. Either "
        "signs out every other session."),
    "admin_locked": Notice(
        "Your account was locked",
        "An administrator locked your Gatehouse account and signed out every session. The "
        "reason given: {reason}",
        "Until it is unlocked, nobody can sign in to it, with any password. If you think this "
        "is a mistake, reply to this mail or contact us."),
    "admin_unlocked": Notice(
        "Your account was unlocked",
        "An administrator unlocked your Gatehouse account: you can sign in again.",
        "If you no longer know your password, reset it."),
    rules.ADMIN: Notice(
        "Your sessions were signed out",
        "An administrator signed out every session of your Gatehouse account.",
        "Sign in again to go on. If you don't know why, reset your password, then contact us."),
}


# --- numbers and times ------------------------------------------------------------------------
