"""The session rules: every decision about a session, and nothing else.

When a session expires, whether it is live for a request, whether a presented value rotates,
is forgiven or is reuse, and what its holder is issued. Pure, like Django's ``SessionBase``
apart from its backends: it takes ``now`` and a ``SessionState`` as arguments and returns
decisions; ``store`` reads the state under its locks, asks, and writes the outcome. The words
that explain each outcome to people are in ``app.words``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app import tokens
from app.config import LAST_ACTIVE_RESOLUTION
from app.sessions.state import SessionState

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
# Not an end: why a request with a bound session's cookies but no proof of its key was refused.
KEY_MISSING = "key_missing"
EMAIL_RESTORED = "email_restored"  # a change of address undone from the old address
ACCOUNT_DELETED = "account_deleted"  # its person deleted the account
ADMIN = "admin"  # ended by an administrator (``flask users lock``, ``flask sessions end-all``)
END_REASONS = frozenset({SIGNED_OUT, REVOKED, REVOKED_OTHERS, PASSWORD_CHANGED, REUSE_DETECTED,
                         IDLE_TIMEOUT, EXPIRED, SESSION_LIMIT, PASSWORD_RESET, NOT_ME,
                         EMAIL_RESTORED, ACCOUNT_DELETED, ADMIN})


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


class KeyProofMissing(SessionError):
    """The session is bound to a key, and this presentation came without a proof from it: a
    copy of the session's value. Refused and recorded; the session is not ended (its owner,
    who holds the key, is fine)."""

    reason = KEY_MISSING


@dataclass(frozen=True)
class Policy:
    issuer: str
    access_ttl: int
    grace: int
    lost_response_window: int
    idle_ttl: int
    max_age: int
    max_sessions: int = 100  # live sessions per person; signing in beyond ends the LRU one

    @property
    def idle_allowance(self) -> int:
        """How long after its stored "last active" a session is still live. That column lags
        the real last request by up to LAST_ACTIVE_RESOLUTION, so the limit counts from the
        latest the request could have been: never shorter than configured."""
        return self.idle_ttl + LAST_ACTIVE_RESOLUTION

    def live_since(self, now: float) -> float:
        """The oldest "last active" of a session still live at ``now`` (for queries)."""
        return now - self.idle_allowance


@dataclass(frozen=True)
class Issued:
    """What the holder must now have: a session handle and an access token, with the cookie
    lifetimes (seconds) that keep each within what the server will still accept."""

    session_public_id: str
    handle: str
    handle_max_age: int
    access_token: str
    access_max_age: int


def expires_at(last_active_at: float, absolute_expires_at: float, policy: Policy) -> float:
    """``min(last activity + idle timeout, sign-in + absolute lifetime)``."""
    return min(last_active_at + policy.idle_allowance, absolute_expires_at)


def expiry(session: SessionState, policy: Policy, now: float) -> str | None:
    """Why a session has run out by ``now``, if it has: its absolute lifetime, or idleness."""
    if now >= session.absolute_expires_at:
        return EXPIRED
    if now >= session.last_active_at + policy.idle_allowance:
        return IDLE_TIMEOUT
    return None


def ended(session: SessionState, policy: Policy, now: float) -> SessionEnded | None:
    """Why the session is not live: ended, older than its person's latest credential change
    (however late its row was written), or run out by ``now``."""
    if session.ended_at is not None:
        return SessionEnded(session.end_reason or "")
    if session.credential_epoch < session.user_epoch:
        return SessionEnded(session.user_epoch_reason or PASSWORD_CHANGED)
    reason = expiry(session, policy, now)
    return SessionEnded(reason) if reason else None


def liveness_failure(session: SessionState, policy: Policy, now: float,
                     token: tokens.AccessClaims | None = None) -> SessionError | None:
    """Why ``session`` cannot authenticate a request carrying ``token``, if it cannot: the
    session is not live (SessionEnded, to be ended), or the token names another user
    (SessionNotFound: only a forger could make one), or it was issued with an older value than
    the session's newest (``token_failure``)."""
    failure = ended(session, policy, now)
    if failure is not None or token is None:
        return failure
    if not tokens.hashes_equal(session.user_public_id, token.user_id):
        return SessionNotFound()
    return token_failure(session, token.generation, policy, now)


def token_failure(session: SessionState, generation: int, policy: Policy,
                  now: float) -> SessionError | None:
    """A token from before a re-key is StaleAccessToken (the session cookie renews it, or
    nothing does; a bound session's re-key refuses even its newest, which only a proof of its
    key renews). Otherwise a token of the newest generation is live. One of the previous
    generation is live within the grace window: a browser rotates only once its own token has
    expired, so later, such a token in use means someone else rotated (ReuseDetected), as
    does any older one."""
    if generation < (session.rekey_generation or 0):
        return StaleAccessToken()
    if generation == session.generation:
        return None
    if generation > session.generation:  # signed by us, yet never issued: refuse it
        return SessionNotFound()
    if generation == session.generation - 1 and now - session.rotated_at <= policy.grace:
        return None
    if session.key_thumbprint:
        # Only the key's holder rotates a bound session, so nobody else's rotation shows here:
        # an older token is a copy (or a long-delayed request). Refused; nothing is ended.
        return KeyProofMissing()
    return ReuseDetected()


def activity_due(last_active_at: float, now: float) -> bool:
    """Whether "last active" is old enough to be written again."""
    return now - last_active_at >= LAST_ACTIVE_RESOLUTION


def use_to_record(session: SessionState, proves: bool, now: float, ip_address: str,
                  user_agent: str) -> dict[str, object]:
    """What a request that used the session changes, by field: its newest value proven
    (``proves``), "last active" (at most once per LAST_ACTIVE_RESOLUTION), the address or
    device of the latest request. Empty, and so no write, for nearly every request."""
    changes: dict[str, object] = {}
    if proves and not session.successor_seen:
        changes["successor_seen"] = True
    if activity_due(session.last_active_at, now):
        changes["last_active_at"] = now
    if ip_address and ip_address[:64] != session.last_ip_address:
        changes["last_ip_address"] = ip_address[:64]
    if user_agent and user_agent[:512] != session.last_user_agent:
        changes["last_user_agent"] = user_agent[:512]
    return changes


def holder_failure(session: SessionState, client_id: str) -> SessionNotFound | None:
    """A session's value works only for its holder: an app's (``client_id`` set) for that app
    at the token endpoint, a browser's (none) in a browser's cookie. Anyone else presenting
    it finds no session."""
    return None if session.client_id == client_id else SessionNotFound()


def rotation_failure(session: SessionState, generation: int, successor_hash: str,
                     policy: Policy, now: float, proven_key: str = "") -> SessionError | None:
    """Why presenting the value of ``generation`` (whose successor hashes to
    ``successor_hash``), with a proof from the key whose thumbprint is ``proven_key`` (or
    none), cannot rotate ``session``, if it cannot:

    * a session bound to a key rotates only with a proof from that key (KeyProofMissing:
      refused, nothing ended, whichever value was presented: without the key, not even an old
      value can end the owner's session);
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
    if session.key_thumbprint and not tokens.hashes_equal(proven_key, session.key_thumbprint):
        return KeyProofMissing()
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


def forgiveness(session: SessionState, policy: Policy, now: float) -> str:
    """Why the predecessor of ``session``'s value was forgiven (``rotation_failure`` found no
    failure): within the grace window, or later, as a response that may have been lost."""
    return "grace" if now - session.rotated_at <= policy.grace else "lost_response"


def rekey_keeps_value(key_thumbprint: str) -> bool:
    """Whether a re-key keeps the session's value rather than replace it: when the session is
    bound to a key. A re-key is asked for with cookies alone (which a copy has too); a bound
    session's new value goes only to a proof of its key, so the re-key just refuses every
    access token issued so far and the key's holder renews at its next refresh."""
    return bool(key_thumbprint)


def _superseded_by_recent_rekey(session: SessionState, generation: int, policy: Policy,
                                now: float) -> bool:
    """A value the re-key replaced (or its predecessor, when the re-keying request had just
    rotated it), presented by a request that was already in flight: refused, not an alarm.
    After the grace window the same value is reuse like any other."""
    if session.rekeyed_at is None or session.rekey_generation is None:
        return False
    if now - session.rekeyed_at > policy.grace:
        return False
    return session.rekey_generation - 2 <= generation < session.rekey_generation


def issue(keys: tokens.Keys, policy: Policy, *, public_id: str, absolute_expires_at: float,
          user_public_id: str, handle: str, generation: int, now: float,
          client_id: str = "", key_thumbprint: str = "") -> Issued:
    """What to hold for ``handle`` (of ``generation``): an access token issued with it, valid
    for ``policy.access_ttl``, and neither outliving the session's absolute lifetime. The
    session cookie outlives the idle limit by an access token's lifetime: a browser that keeps
    using its access token is active without presenting the session value. ``client_id``:
    the app whose session it is, named in the token, with the key it is bound to (DPoP)."""
    issued_at = issued_at_second(now)
    remaining = max(0, int(absolute_expires_at) - issued_at)
    access_ttl = min(policy.access_ttl, remaining)
    access = tokens.encode_access(keys, issuer=policy.issuer, user_id=user_public_id,
                                  session_id=public_id, generation=generation,
                                  now=issued_at, expires_at=issued_at + access_ttl,
                                  client_id=client_id, key_thumbprint=key_thumbprint)
    handle_ttl = policy.idle_allowance + policy.access_ttl
    return Issued(public_id, handle, min(handle_ttl, remaining), access, access_ttl)


def issued_at_second(now: float) -> int:
    # Rounded up, so that a cookie's Max-Age never outlives the token's ``exp``.
    return math.ceil(now)
