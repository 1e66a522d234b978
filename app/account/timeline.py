"""The words of a session's timeline: each event in people's terms."""

from __future__ import annotations

from app import places, session_rules, session_store
from app.account import EVENT_NAMES
from app.models import LoginSession, SecurityEvent

STARTS = {"password": "Signed in with the password",
          "reset": "Signed in with a new password, from a password reset link"}
# "… refused 2 minutes after <this>"
ENDED_BY = {
    session_rules.SIGNED_OUT: "you signed it out",
    session_rules.REVOKED: "you signed it out",
    session_rules.REVOKED_OTHERS: "you signed it out",
    session_rules.NOT_ME: "you ended it from a mail",
    session_rules.PASSWORD_CHANGED: "your password change ended it",
    session_rules.PASSWORD_RESET: "a password reset ended it",
    session_rules.REUSE_DETECTED: "it was ended because a copy of it was used",
    session_rules.IDLE_TIMEOUT: "it timed out",
    session_rules.EXPIRED: "it expired",
    session_rules.SESSION_LIMIT: "it was signed out to make room for a newer one",
}
_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def span(seconds: float) -> str:
    """A length of time in its largest whole unit: "2 minutes", "1 day"."""
    for unit, size in _UNITS:
        if seconds >= size:
            return plural(int(seconds // size), unit)
    return "less than a second"


def address(ip: str) -> str:
    where = places.place(ip)
    return f"{ip} ({where})" if ip and where else ip or "an unknown address"


def entry(event: SecurityEvent, session: LoginSession, actor: str) -> str:
    """What ``event`` of ``session`` means (``actor``: the device that signed it out)."""
    kind = event.kind
    if kind == "sign_in":
        return STARTS.get(session.start_method, "Signed in")
    if kind == session_store.ADDRESS_CHANGED:
        return f"Used from a new address: {address(event.ip_address)}"
    if kind == session_store.DEVICE_CHANGED:
        return f"Used from a different browser: {event.detail}"
    if kind == session_store.REAUTHENTICATED:
        return "Password entered again to confirm an action"
    if kind == session_store.REFUSED_USE:
        after = span(event.created_at - (session.ended_at or event.created_at))
        return (f"A request with this session's cookie was refused {after} after "
                f"{ENDED_BY.get(session.end_reason or '', 'it ended')}, from "
                f"{address(event.ip_address)}")
    if kind in session_rules.END_REASONS:
        return ended(kind, event, actor)
    return EVENT_NAMES.get(kind, kind)


def ended(reason: str, event: SecurityEvent, actor: str) -> str:
    label = session_rules.end_reason(reason).label
    if reason == session_rules.REUSE_DETECTED:
        return f"{label}: a copy of its cookie was presented from {address(event.ip_address)}"
    if actor:
        return f"{label}, from {actor}"
    return label
