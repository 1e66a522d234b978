"""Security events: a row per event for the person's own history, and one structured log line.

Each rotation is a log line only: a row every few minutes per browser would bloat the table
without telling the person anything (the session's ``generation`` counts them). An event that
concerns nobody's account (a refused anonymous request) is a counter per address, kind and
hour instead of a row: anyone can send those as fast as they like.

Nothing secret is ever passed here: ids, kinds, reasons and addresses only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from peewee import JOIN, Select, fn

from app import metrics
from app.config import ANONYMOUS_WINDOW
from app.limits import address_key
from app.models import AnonymousFailure, KnownDevice, SecurityEvent
from app.sessions.rules import END_REASONS

log = logging.getLogger("gatehouse.security")

# The kinds of event, besides the end reasons of ``sessions.rules`` (an ended session's event
# is its reason). Their words are ``words.EVENT_NAMES``.
SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
REAUTH_FAILED = "reauth_failed"  # a wrong password where an action asked for it again
CURRENT_PASSWORD_FAILED = "current_password_failed"  # on the password or email form
REAUTHENTICATED = "reauthenticated"
REGISTERED = "registered"
EMAIL_VERIFIED = "email_verified"
EMAIL_CHANGED = "email_changed"
EMAIL_RESTORED = "email_restored"
ACCOUNT_DELETED = "account_deleted"  # a log line only: no row outlives the account
PASSWORD_CHANGED = "password_changed"
PASSWORD_RESET = "password_reset"
PASSWORD_RESET_REQUESTED = "password_reset_requested"
ADDRESS_CHANGED = "address_changed"  # a session used from a new address
DEVICE_CHANGED = "device_changed"  # ... or from another browser
REFUSED_USE = "refused_use"  # a request with an ended session's cookie
KEY_BOUND = "key_bound"  # the session rotates only with a proof from its key from now on
KEY_MISSING = "key_missing"  # a bound session's value presented without its key: refused
DEVICE_NAMED = "device_named"
PASSKEY_ADDED = "passkey_added"
PASSKEY_REMOVED = "passkey_removed"
PASSKEY_RENAMED = "passkey_renamed"
PASSKEY_FAILED = "passkey_failed"  # an assertion refused (the detail says why)
TWO_STEP_ON = "two_step_on"
TWO_STEP_OFF = "two_step_off"
TWO_STEP_FAILED = "two_step_failed"  # a wrong code at the second step
RECOVERY_CODE_USED = "recovery_code_used"
CSRF_FAILED = "csrf_failed"
THROTTLED = "throttled"
ACCOUNT_LOCKED = "account_locked"  # failed sign-ins used up the account's allowance
BY_CODES = "codes"  # its detail when wrong second-step codes did (the password is known)
ACCOUNT_UNLOCKED = "account_unlocked"  # by the link mailed with the lock
PASSWORD_BLOCKED = "password_blocked"  # its owner disowned a sign-in: reset it to sign in
# Log lines only, never rows: a rotation, and a superseded value forgiven (``forgiven``: grace
# or lost_response).
ROTATED = "rotated"
ROTATION_REPEATED = "rotation_repeated"

# kind -> functions called with the event, inside the transaction that records it (so a mail
# they queue commits, or not, with the event). Registered once per process; idempotent.
_listeners: dict[str, list[Callable[..., None]]] = {}

NEW_DEVICE = "from a new device"  # the detail of a sign-in from a browser new to the account


def _no_device() -> str:
    return ""


# The hash of the device cookie of the request being served, "" outside one: every event
# remembers the browser it came from. The middleware, which alone reads cookies, sets it.
device_of_request: Callable[[], str] = _no_device


def set_device_source(source: Callable[[], str]) -> None:
    global device_of_request
    device_of_request = source


def on(kind: str, listener: Callable[..., None]) -> None:
    if listener not in _listeners.setdefault(kind, []):
        _listeners[kind].append(listener)


def record(kind: str, *, user: int | None, now: float, session: int | None = None,
           ip: str = "", detail: str = "", method: str = "") -> None:
    """Record the event ``kind``: a row (or an anonymous count), a log line, its metrics, and
    its listeners. ``method``: how a person proved who they are, for a sign-in."""
    detail = printable(detail)
    if user is None:
        _count_anonymous(kind, ip, detail, now)
    else:
        SecurityEvent.create(kind=kind, user=user, session=session, ip_address=ip[:64],
                             detail=detail[:255], created_at=now,
                             device_hash=device_of_request())
    note(kind, user=user, now=now, session=session, ip=ip, detail=detail)
    _count(kind, method)
    for listener in _listeners.get(kind, ()):
        listener(user=user, session=session, ip=ip, now=now, detail=detail)


def _count(kind: str, method: str) -> None:
    """The metrics of an event: every kind, and the series operators alert on."""
    metrics.count(metrics.SECURITY_EVENTS, kind)
    if kind == SIGN_IN:
        metrics.count(metrics.SIGN_INS, method or "password", "success")
    elif kind == SIGN_IN_FAILED:
        metrics.count(metrics.SIGN_INS, method or "password", "failure")
    elif kind == THROTTLED:
        metrics.THROTTLED.inc()
    elif kind in END_REASONS:
        metrics.session_ended(kind)


def _count_anonymous(kind: str, ip: str, detail: str, now: float) -> None:
    """One upsert: the row of this hour, address (IPv6 by /64) and kind counts one more."""
    (AnonymousFailure.insert(window_start=now - now % ANONYMOUS_WINDOW, kind=kind,
                             ip_address=address_key(ip)[:64], last_detail=detail[:255])
     .on_conflict(conflict_target=[AnonymousFailure.window_start, AnonymousFailure.ip_address,
                                   AnonymousFailure.kind],
                  update={AnonymousFailure.count: AnonymousFailure.count + 1,
                          AnonymousFailure.last_detail: detail[:255]})
     .execute())


def anonymous_count(kind: str | None = None) -> int:
    """How many anonymous events were counted (of ``kind``), for operators and tests."""
    query = AnonymousFailure.select(fn.COALESCE(fn.SUM(AnonymousFailure.count), 0))
    if kind is not None:
        query = query.where(AnonymousFailure.kind == kind)
    return int(query.scalar())


def prune(now: float, retention: int) -> int:
    """Delete events, and anonymous counts, older than ``retention`` seconds."""
    cutoff = now - retention
    removed = SecurityEvent.delete().where(SecurityEvent.created_at < cutoff).execute()
    return removed + AnonymousFailure.delete().where(
        AnonymousFailure.window_start < cutoff - ANONYMOUS_WINDOW).execute()


def printable(text: str) -> str:
    """``text`` with every control, surrogate or other unprintable character escaped.

    A detail may quote a request path: one with NUL is refused by PostgreSQL and one with a
    lone surrogate (undecodable bytes) cannot be encoded, either of which would turn the
    refusal being recorded into a 500.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


class Event:
    """A security event's log line, formatted only by a handler that writes it: JSON, so a
    CR/LF in any value stays inside one escaped string (no forged log lines); the JSON log
    format takes ``fields`` as they are."""

    __slots__ = ("kind", "now", "extra")

    def __init__(self, kind: str, now: float, extra: dict[str, Any]) -> None:
        self.kind, self.now, self.extra = kind, now, extra

    @property
    def fields(self) -> dict[str, Any]:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now))
        return {"event": self.kind, "at": at, **self.extra}

    def __str__(self) -> str:
        return json.dumps(self.fields, sort_keys=True, default=str)


def note(kind: str, *, now: float, **fields: Any) -> None:
    """The structured log line alone, for events too frequent for a row (each rotation)."""
    log.info("%s", Event(kind, now, fields))
    if kind == ROTATED:
        metrics.rotation("rotated")
    elif kind == ROTATION_REPEATED:
        metrics.rotation(fields.get("forgiven", "grace"))


def _with_device(query: Select) -> Select:
    """Each event with the name and label of the browser it came from (None when unknown)."""
    return (query.select_extend(KnownDevice.name.alias("device_name"),
                                KnownDevice.label.alias("device_label"))
            .join(KnownDevice, JOIN.LEFT_OUTER,
                  on=(KnownDevice.user == SecurityEvent.user)
                  & (KnownDevice.device_hash == SecurityEvent.device_hash))
            .objects())


def recent(user_id: int) -> Select:
    """The person's events, newest first, with their browsers (a query: the caller pages it)."""
    return _with_device(SecurityEvent.select().where(SecurityEvent.user == user_id)
                        .order_by(SecurityEvent.created_at.desc(), SecurityEvent.id.desc()))


def of_session(session_id: int) -> Select:
    """One session's events, oldest first, with their browsers: its timeline."""
    return _with_device(SecurityEvent.select().where(SecurityEvent.session == session_id)
                        .order_by(SecurityEvent.created_at, SecurityEvent.id))
