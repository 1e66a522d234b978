"""The session rules: every decision about a signed-in browser, and nothing else.

Why a session ends and the words that say so, when it expires, whether a presented value is
live, forgiven or reused, and what the browser is issued. Pure, like Django's ``SessionBase``
apart from its backends: it imports only ``tokens``, takes ``now`` and the session's state as
arguments and returns decisions; ``session_store`` reads that state under its locks, asks, and
writes the outcome.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from app import tokens

# Why a session ended: stored on the row, shown on the sessions page, sent in JSON.
SIGNED_OUT = "signed_out"
REVOKED = "revoked"
REVOKED_OTHERS = "revoked_others"
PASSWORD_CHANGED = "password_changed"
REUSE_DETECTED = "reuse_detected"
IDLE_TIMEOUT = "idle_timeout"
EXPIRED = "expired"
SESSION_LIMIT = "session_limit"
PASSWORD_RESET = "password_reset"
NOT_ME = "not_me"  # ended from the "This wasn't me" link of a new-sign-in mail

# Seconds: "last active" is written at most this often per session, so the idle limit counts
# from the latest moment the last request could have been, and may run this much longer.
LAST_ACTIVE_RESOLUTION = 60


@dataclass(frozen=True)
class EndReason:
    """The words for one end reason: ``label`` and ``explanation`` on the sessions page,
    ``message`` to the person whose session it was (a flash on the next page, and the JSON
    ``message``). ``alert`` marks the reasons that may mean someone else has the cookies."""

    label: str
    message: str
    alert: bool = False
    explanation: str = ""


_ELSEWHERE = "This session was signed out from another device."
# Reuse detection in people's words, wherever it is shown: the sessions page, the message at
# sign-in, the JSON ``message`` and the mail.
USED_TWICE = "Signed out: its sign-in cookie was used twice"
END_REASONS: dict[str, EndReason] = {
    SIGNED_OUT: EndReason("Signed out", "You have signed out."),
    REVOKED: EndReason("Signed out by you", _ELSEWHERE),
    REVOKED_OTHERS: EndReason("Signed out by you (all other sessions)", _ELSEWHERE),
    PASSWORD_CHANGED: EndReason("Password changed",
                                "Your password was changed, so this session was ended."),
    REUSE_DETECTED: EndReason(
        USED_TWICE,
        "You were signed out because this session's sign-in cookie was used twice, so someone "
        "may have a copy of it. Sign in again; if you don't know why, change your password.",
        alert=True,
        explanation="Its sign-in cookie was used again from {address} after it had already "
        "been replaced, so two browsers had it. Gatehouse signed the session out so that "
        "neither can use it. If you don't recognise this, change your password."),
    PASSWORD_RESET: EndReason("Password reset",
                              "Your password was reset, so this session was ended."),
    NOT_ME: EndReason(
        "Ended from a \"This wasn't me\" mail",
        "This session was ended from the \"This wasn't me\" link in a mail.", alert=True,
        explanation="The account's owner said this sign-in was not theirs, from the link in "
        "the mail that announced it."),
    IDLE_TIMEOUT: EndReason("Inactive too long",
                            "Your session ended after a period of inactivity."),
    EXPIRED: EndReason("Reached its maximum age", "Your session reached its maximum age."),
    SESSION_LIMIT: EndReason(
        "Too many sessions: the one unused longest was signed out",
        "This session was signed out because your account signed in on more devices than it "
        "may keep at once; the session unused for longest ends first."),
}
UNKNOWN_END = EndReason("Ended", "Your session has ended.")


def end_reason(reason: str | None) -> EndReason:
    return END_REASONS.get(reason or "", UNKNOWN_END)


class SessionError(Exception):
    """The presented session cannot authenticate this request."""

    reason: str | None = None


class SessionNotFound(SessionError):
    """No session has this handle or id (never issued, pruned, or someone else's)."""


class SessionEnded(SessionError):
    """The session has ended; ``reason`` says why (one of the constants above)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReuseDetected(SessionEnded):
    """A superseded value was presented outside the forgiving cases; the session is now ended."""

    def __init__(self) -> None:
        super().__init__(REUSE_DETECTED)


class StaleHandle(SessionError):
    """A value a re-key replaced moments ago: refused, but nothing is revoked for it."""


class StaleAccessToken(SessionError):
    """An access token issued before its session was re-keyed: renew from the session cookie."""


@dataclass(frozen=True)
class Policy:
    issuer: str
    access_ttl: int
    grace: int
    lost_response_window: int
    idle_ttl: int
    max_age: int
    max_sessions: int = 100  # live sessions per person; signing in beyond ends the LRU one


@dataclass(frozen=True)
class Issued:
    """What the browser must now hold: a session handle and an access token, with the cookie
    lifetimes (seconds) that keep each within what the server will still accept."""

    session_public_id: str
    handle: str
    handle_max_age: int
    access_token: str
    access_max_age: int


@dataclass(frozen=True)
class Principal:
    """The signed-in person of one request, read with the session's liveness."""

    user_id: int
    user_public_id: str
    email: str
    session_id: int
    session_public_id: str
    authenticated_at: float


class Lifetime(Protocol):
    """What expiry is decided on: a stored session, or a row read for one request."""

    @property
    def last_active_at(self) -> float: ...
    @property
    def absolute_expires_at(self) -> float: ...


@dataclass(frozen=True)
class LiveRow:
    """The columns the per-request liveness check reads, and the Principal they make."""

    principal: Principal
    ended_at: float | None
    end_reason: str | None
    absolute_expires_at: float
    last_active_at: float
    generation: int
    rotated_at: float
    successor_seen: bool
    rekey_generation: int | None
    credential_epoch: int
    user_epoch: int
    user_epoch_reason: str
    last_ip_address: str
    last_user_agent: str


@dataclass(frozen=True)
class Family:
    """The columns of a session that rotation decides on, read under its row lock."""

    id: int
    public_id: str
    user_id: int
    generation: int
    current_hash: str
    rotated_at: float
    successor_seen: bool
    rekeyed_at: float | None
    rekey_generation: int | None
    last_active_at: float
    absolute_expires_at: float
    ended_at: float | None
    end_reason: str | None
    credential_epoch: int
    user_epoch: int
    user_epoch_reason: str
    last_ip_address: str
    last_user_agent: str
    authenticated_at: float
    user_public_id: str
    email: str


class Credentials(Protocol):
    """The epochs a session is judged on: its own, and its person's latest."""

    @property
    def ended_at(self) -> float | None: ...
    @property
    def end_reason(self) -> str | None: ...
    @property
    def credential_epoch(self) -> int: ...
    @property
    def user_epoch(self) -> int: ...
    @property
    def user_epoch_reason(self) -> str: ...
    @property
    def last_active_at(self) -> float: ...
    @property
    def absolute_expires_at(self) -> float: ...


def idle_deadline(last_active_at: float, policy: Policy) -> float:
    """When a session whose "last active" reads ``last_active_at`` has been idle too long.

    That column lags the real last request by up to LAST_ACTIVE_RESOLUTION, so the limit
    counts from the latest the request could have been: never shorter than configured.
    """
    return last_active_at + policy.idle_ttl + LAST_ACTIVE_RESOLUTION


def expires_at(session: Lifetime, policy: Policy) -> float:
    """``min(last activity + idle timeout, sign-in + absolute lifetime)``."""
    return min(idle_deadline(session.last_active_at, policy), session.absolute_expires_at)


def expiry(session: Lifetime, policy: Policy, now: float) -> str | None:
    """Why a session has run out by ``now``, if it has: its absolute lifetime, or idleness."""
    if now >= session.absolute_expires_at:
        return EXPIRED
    if now >= idle_deadline(session.last_active_at, policy):
        return IDLE_TIMEOUT
    return None


def ended(session: Credentials, policy: Policy, now: float) -> SessionEnded | None:
    """Why the session is not live: ended, older than its person's latest credential change
    (however late its row was written), or run out by ``now``."""
    if session.ended_at is not None:
        return SessionEnded(session.end_reason or "")
    if session.credential_epoch < session.user_epoch:
        return SessionEnded(session.user_epoch_reason or PASSWORD_CHANGED)
    reason = expiry(session, policy, now)
    return SessionEnded(reason) if reason else None


def liveness_failure(row: LiveRow, policy: Policy, now: float,
                     token: tokens.AccessClaims | None = None) -> SessionError | None:
    """Why the session of ``row`` cannot authenticate a request carrying ``token``, if it
    cannot: the session is not live (SessionEnded, to be ended), or the token names another
    user (SessionNotFound: only a forger could make one), or it was issued with an older
    value than the session's newest (``token_failure``)."""
    failure = ended(row, policy, now)
    if failure is not None or token is None:
        return failure
    if not tokens.hashes_equal(row.principal.user_public_id, token.user_id):
        return SessionNotFound()
    return token_failure(row, token.generation, policy, now)


def token_failure(row: LiveRow, generation: int, policy: Policy,
                  now: float) -> SessionError | None:
    """A token of the newest generation is live. One from before a re-key is
    StaleAccessToken (the session cookie renews it, or nothing does). One of the previous
    generation is live within the grace window: a browser rotates only once its own token has
    expired, so later, such a token in use means someone else rotated (ReuseDetected), as
    does any older one."""
    if generation == row.generation:
        return None
    if generation < (row.rekey_generation or 0):
        return StaleAccessToken()
    if generation > row.generation:  # signed by us, yet never issued: refuse it
        return SessionNotFound()
    if generation == row.generation - 1 and now - row.rotated_at <= policy.grace:
        return None
    return ReuseDetected()


def activity_due(last_active_at: float, now: float) -> bool:
    """Whether "last active" is old enough to be written again."""
    return now - last_active_at >= LAST_ACTIVE_RESOLUTION


def use_to_record(row: LiveRow | Family, proves: bool, now: float, ip_address: str,
                  user_agent: str) -> dict[str, object]:
    """What a request that used the session changes: its newest value proven (``proves``),
    "last active" (at most once per LAST_ACTIVE_RESOLUTION), the address or device of the
    latest request. Empty, and so no write, for nearly every request."""
    changes: dict[str, object] = {}
    if proves and not row.successor_seen:
        changes["successor_seen"] = True
    if activity_due(row.last_active_at, now):
        changes["last_active_at"] = now
    if ip_address and ip_address[:64] != row.last_ip_address:
        changes["last_ip_address"] = ip_address[:64]
    if user_agent and user_agent[:512] != row.last_user_agent:
        changes["last_user_agent"] = user_agent[:512]
    return changes


def rotation_failure(session: Family, generation: int, successor_hash: str, policy: Policy,
                     now: float) -> SessionError | None:
    """Why presenting the value of ``generation`` (whose successor hashes to
    ``successor_hash``) cannot rotate ``session``, if it cannot:

    * the current value rotates;
    * its immediate predecessor is forgiven within ``policy.grace`` seconds of the rotation,
      and after it while the successor is unproven (the response delivering it may have been
      lost), for at most ``policy.lost_response_window`` seconds after the rotation;
    * a value a re-key replaced within the grace window is StaleHandle (refused, no alarm);
    * anything else that was superseded is ReuseDetected.
    """
    failure = ended(session, policy, now)
    if failure is not None:
        return failure
    if generation == session.generation:
        return None
    if _superseded_by_recent_rekey(session, generation, policy, now):
        return StaleHandle()
    if generation == session.generation - 1:
        since = now - session.rotated_at
        forgiven = since <= policy.grace or (
            not session.successor_seen and since <= policy.lost_response_window)
        # Across a re-key the derived successor is not the current value: never forgiven.
        if forgiven and tokens.hashes_equal(successor_hash, session.current_hash):
            return None
    return ReuseDetected()


def _superseded_by_recent_rekey(session: Family, generation: int, policy: Policy,
                                now: float) -> bool:
    """A value the re-key replaced (or its predecessor, when the re-keying request had just
    rotated it), presented by a request that was already in flight: refused, not an alarm.
    After the grace window the same value is reuse like any other."""
    if session.rekeyed_at is None or session.rekey_generation is None:
        return False
    if now - session.rekeyed_at > policy.grace:
        return False
    return session.rekey_generation - 2 <= generation < session.rekey_generation


def rotated_principal(session: Family) -> Principal:
    """The request's Principal once ``session`` has rotated (or had already)."""
    return Principal(session.user_id, session.user_public_id, session.email, session.id,
                     session.public_id, session.authenticated_at)


class Issuable(Protocol):
    @property
    def public_id(self) -> str: ...
    @property
    def absolute_expires_at(self) -> float: ...


def issue(keys: tokens.Keys, policy: Policy, session: Issuable, user_public_id: str,
          handle: str, generation: int, now: float) -> Issued:
    """The cookies for ``handle`` (of ``generation``): an access token issued with it, valid
    for ``policy.access_ttl``, and neither outliving the session's absolute lifetime. The
    session cookie outlives the idle limit by an access token's lifetime: a browser that
    keeps using its access token is active without presenting the session value."""
    issued_at = issued_at_second(now)
    remaining = max(0, int(session.absolute_expires_at) - issued_at)
    access_ttl = min(policy.access_ttl, remaining)
    access = tokens.encode_access(keys, issuer=policy.issuer, user_id=user_public_id,
                                  session_id=session.public_id, generation=generation,
                                  now=issued_at, expires_at=issued_at + access_ttl)
    handle_ttl = policy.idle_ttl + policy.access_ttl + LAST_ACTIVE_RESOLUTION
    return Issued(session.public_id, handle, min(handle_ttl, remaining), access, access_ttl)


def issued_at_second(now: float) -> int:
    # Rounded up, so that a cookie's Max-Age never outlives the token's ``exp``.
    return math.ceil(now)
