"""A session's timeline: each of its events in people's terms (the words are ``app.words``)."""

from __future__ import annotations

from app import audit, places, words
from app.models import LoginSession, SecurityEvent
from app.sessions import rules


def address(ip: str) -> str:
    where = places.place(ip)
    return f"{ip} ({where})" if ip and where else ip or "an unknown address"


def entry(event: SecurityEvent, session: LoginSession, actor: str) -> str:
    """What ``event`` of ``session`` means (``actor``: the device that signed it out)."""
    kind = event.kind
    if kind == audit.SIGN_IN:
        return words.STARTS.get(session.start_method, "Signed in")
    if kind == audit.ADDRESS_CHANGED:
        return f"Used from a new address: {address(event.ip_address)}"
    if kind == audit.DEVICE_CHANGED:
        return f"Used from a different browser: {event.detail}"
    if kind == audit.REAUTHENTICATED:
        return "Password entered again to confirm an action"
    if kind == audit.REFUSED_USE:
        after = words.span(event.created_at - (session.ended_at or event.created_at))
        ended_by = words.end_reason(session.end_reason).ended_by
        return (f"A request with this session's cookie was refused {after} after {ended_by}, "
                f"from {address(event.ip_address)}")
    if kind == audit.KEY_MISSING:
        return f"{words.EVENT_NAMES[kind]}, from {address(event.ip_address)}"
    if kind in words.END_REASONS:
        return ended(kind, event, actor)
    return words.EVENT_NAMES.get(kind, kind)


def ended(reason: str, event: SecurityEvent, actor: str) -> str:
    label = words.end_reason(reason).label
    if reason == rules.REUSE_DETECTED:
        return f"{label}: a copy of its cookie was presented from {address(event.ip_address)}"
    if actor:
        return f"{label}, from {actor}"
    return label
