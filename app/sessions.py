"""The session rules: start, rotate, detect reuse, revoke, list, prune.

Every decision about a signed-in browser is made here, in one place, against the database and
the ``now`` the caller passes. Nothing here knows about cookies or HTTP. A session is one
refresh-token family; ending it ends every token it ever had, access tokens included, because
the middleware checks liveness on every request.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from app import audit, throttle, tokens
from app.db import database, fetch_one, is_postgres, locked, write_transaction
from app.models import LoginSession, RefreshToken, User

# Why a session ended: stored on the row, shown on the sessions page.
SIGNED_OUT = "signed_out"
REVOKED = "revoked"
REVOKED_OTHERS = "revoked_others"
PASSWORD_CHANGED = "password_changed"
REUSE_DETECTED = "reuse_detected"
IDLE_TIMEOUT = "idle_timeout"
EXPIRED = "expired"
PASSWORD_RESET = "password_reset"
NOT_ME = "not_me"  # ended from the "This wasn't me" link of a new sign-in mail

LAST_ACTIVE_RESOLUTION = 60  # seconds; "last active" is written at most this often per session


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
    idle_ttl: int
    max_age: int


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
    """The signed-in person of one request, read in the liveness check."""

    user_id: int
    user_public_id: str
    email: str
    session_id: int
    session_public_id: str
    authenticated_at: float
    current_hash: str
    successor_seen: bool


def expires_at(session: LoginSession, policy: Policy) -> float:
    """``min(last activity + idle timeout, sign-in + absolute lifetime)``."""
    return min(session.last_active_at + policy.idle_ttl, session.absolute_expires_at)


def start(user: User, *, keys: tokens.Keys, policy: Policy, now: float, user_agent: str,
          ip_address: str) -> Issued:
    """Begin a new session (a new token family) for ``user``, who has just proved who they are."""
    handle = tokens.new_handle()
    digest = tokens.token_hash(tokens.refresh_token(keys, handle))
    with write_transaction():
        session = LoginSession.create(
            public_id=tokens.new_public_id(), user=user, created_at=now, authenticated_at=now,
            last_active_at=now, absolute_expires_at=now + policy.max_age, current_hash=digest,
            rotated_at=now, user_agent=user_agent[:512], ip_address=ip_address[:64],
        )
        RefreshToken.create(token_hash=digest, session=session, generation=0, issued_at=now)
        audit.record("sign_in", user=user.id, session=session.id, ip=ip_address, now=now)
    return _issue(keys, policy, session, user.public_id, handle, now)


def rotate(handle: str, *, keys: tokens.Keys, policy: Policy, now: float,
           ip_address: str = "") -> Issued:
    """Exchange a session handle for its successor and a new access token.

    Guarantees, across threads, processes and instances sharing the database:

    * atomic: the swap and its bookkeeping are one transaction holding the session's row lock;
      an error anywhere leaves the previous value as the only valid one;
    * idempotent: every request presenting the same value gets the same successor handle;
      presenting the immediate predecessor is honoured within ``policy.grace`` seconds of the
      rotation, and after it for as long as no request has carried the successor (a lost
      response);
    * anything else that was superseded ends the session (``ReuseDetected``).

    Fixed SQL rather than ORM queries: building them cost more than running them, and on
    SQLite the write lock is held meanwhile, so every other worker's rotation waited too.
    """
    presented = tokens.token_hash(tokens.refresh_token(keys, handle))
    successor = tokens.successor_handle(keys, handle)
    successor_hash = tokens.token_hash(tokens.refresh_token(keys, successor))
    # A token row never changes once written, so it is read before taking the lock.
    token = _fetch(_TOKEN_SQL, presented)
    if token is None:
        raise SessionNotFound()
    session_id, generation = token
    with write_transaction():
        # Read under the lock: a parallel request may have rotated while we waited.
        row = _fetch(_ROTATE_SQL + (" FOR UPDATE OF s" if is_postgres() else ""), session_id)
        if row is None:  # pruned since the token was read
            raise SessionNotFound()
        session = _Family(*row[:-1])
        failure = _liveness_failure(session, policy, now) or _reuse_failure(
            session, generation, successor_hash, policy, now)
        advanced = failure is None and generation == session.generation
        if advanced:
            _advance(session, successor_hash, now)
        elif isinstance(failure, SessionEnded):
            _end(session.id, session.user_id, failure.reason, now, ip_address)
    if failure is not None:
        raise failure
    audit.note("rotated" if advanced else "rotation_repeated", now=now, user=session.user_id,
               session=session.id, generation=session.generation + advanced, ip=ip_address)
    return _issue(keys, policy, session, row[-1], successor, now)


def rotate_guarded(handle: str, *, guard: list[throttle.Limit], now: float,
                   **kwargs) -> Issued:
    """``rotate``, counting every unknown value a client presents against ``guard``.

    Once a client has used up its allowance, its unknown values raise Throttled, so session
    values cannot be guessed at speed. A known value is never refused for it: people behind
    the same address as a guesser stay signed in.
    """
    try:
        return rotate(handle, now=now, **kwargs)
    except SessionNotFound:
        throttle.check(guard, now)
        throttle.fail(guard, now)
        raise


@dataclass(frozen=True)
class _Family:
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


_TOKEN_SQL = "SELECT session_id, generation FROM refresh_token WHERE token_hash = {p}"
_ROTATE_SQL = (
    "SELECT s.id, s.public_id, s.user_id, s.generation, s.current_hash, s.rotated_at, "
    "s.successor_seen, s.rekeyed_at, s.rekey_generation, s.last_active_at, "
    "s.absolute_expires_at, s.ended_at, "
    's.end_reason, u.public_id FROM login_session s JOIN "user" u ON u.id = s.user_id '
    "WHERE s.id = {p}"
)
_INSERT_TOKEN_SQL = ("INSERT INTO refresh_token (token_hash, session_id, generation, issued_at) "
                     "VALUES ({p}, {p}, {p}, {p})")
_ADVANCE_SQL = ("UPDATE login_session SET generation = {p}, current_hash = {p}, rotated_at = {p}, "
                "successor_seen = {p}, last_active_at = {p} WHERE id = {p}")


def _execute(sql: str, *params: object):
    return database.execute_sql(_bind(sql, database.param), params)


@functools.cache
def _bind(sql: str, param: str) -> str:
    """``sql`` with the engine's placeholder, formatted once per statement and engine."""
    return sql.format(p=param)


def _fetch(sql: str, *params: object) -> tuple | None:
    return fetch_one(_bind(sql, database.param), params)


def _liveness_failure(session: _Family, policy: Policy, now: float) -> SessionError | None:
    if session.ended_at is not None:
        return SessionEnded(session.end_reason)
    reason = _expiry(session.absolute_expires_at, session.last_active_at, policy, now)
    return SessionEnded(reason) if reason else None


def _expiry(absolute_expires_at: float, last_active_at: float, policy: Policy,
            now: float) -> str | None:
    """Why a session has run out by ``now``, if it has: its absolute lifetime, or idleness."""
    if now >= absolute_expires_at:
        return EXPIRED
    if now >= last_active_at + policy.idle_ttl:
        return IDLE_TIMEOUT
    return None


def _reuse_failure(session: _Family, generation: int, successor_hash: str, policy: Policy,
                   now: float) -> SessionError | None:
    if generation == session.generation:
        return None
    if _superseded_by_recent_rekey(session, generation, policy, now):
        return StaleHandle()
    if generation == session.generation - 1:
        forgiven = now - session.rotated_at <= policy.grace or not session.successor_seen
        # Across a re-key the derived successor is not the current value: never forgiven.
        if forgiven and tokens.hashes_equal(successor_hash, session.current_hash):
            return None
    return ReuseDetected()


def _superseded_by_recent_rekey(session: _Family, generation: int, policy: Policy,
                                now: float) -> bool:
    """A value the re-key replaced (or its predecessor, when the re-keying request had just
    rotated it), presented by a request that was already in flight: refused, not an alarm.
    After the grace window the same value is reuse like any other."""
    if session.rekeyed_at is None or now - session.rekeyed_at > policy.grace:
        return False
    return session.rekey_generation - 2 <= generation < session.rekey_generation


def _advance(session: _Family, successor_hash: str, now: float) -> None:
    _execute(_INSERT_TOKEN_SQL, successor_hash, session.id, session.generation + 1, now)
    _execute(_ADVANCE_SQL, session.generation + 1, successor_hash, now, False, now, session.id)


def _end(session_id: int, user_id: int, reason: str, now: float, ip_address: str = "",
         detail: str = "") -> None:
    """End a session once: an already-ended one keeps its first reason and gets no new event."""
    updated = (LoginSession.update(ended_at=now, end_reason=reason)
               .where(LoginSession.id == session_id, LoginSession.ended_at.is_null())
               .execute())
    if updated:
        audit.record(reason, user=user_id, session=session_id, ip=ip_address, now=now,
                     detail=detail)


def _ended_by(session: LoginSession, actor: str) -> str:
    """The event detail of a revocation: which session ended, and from which one."""
    return f"session {session.public_id} ended by session {actor}" if actor else ""


def _issue(keys: tokens.Keys, policy: Policy, session: LoginSession | _Family,
           user_public_id: str, handle: str, now: float, issued_at: int | None = None) -> Issued:
    issued_at = issued_at or _issued_at(now)
    remaining = max(0, int(session.absolute_expires_at) - issued_at)
    access_ttl = min(policy.access_ttl, remaining)
    access = tokens.encode_access(keys, issuer=policy.issuer, user_id=user_public_id,
                                  session_id=session.public_id, now=issued_at,
                                  expires_at=issued_at + access_ttl)
    return Issued(session.public_id, handle, min(policy.idle_ttl, remaining), access, access_ttl)


def _issued_at(now: float) -> int:
    # Rounded up, so that a cookie's Max-Age never outlives the token's ``exp``.
    return math.ceil(now)


_LIVENESS_SQL = (
    'SELECT s.id, s.public_id, s.ended_at, s.end_reason, s.absolute_expires_at, '
    's.last_active_at, s.authenticated_at, s.current_hash, s.successor_seen, '
    's.access_not_before, u.id, u.public_id, u.email '
    'FROM login_session s JOIN "user" u ON u.id = s.user_id WHERE s.public_id = {p}'
)


def check_live(session_public_id: str, *, policy: Policy, now: float,
               token_issued_at: int | None = None) -> Principal:
    """The per-request liveness check behind immediate revocation: one indexed lookup.

    Raises SessionNotFound or SessionEnded (ending the session first if it has just expired),
    or StaleAccessToken for an access token issued before the session was re-keyed.
    """
    row = _fetch(_LIVENESS_SQL, session_public_id)
    if row is None:
        raise SessionNotFound()
    (sid, public_id, ended_at, end_reason, absolute_expires_at, last_active_at,
     authenticated_at, current_hash, seen, not_before, uid, user_public_id, email) = row
    if ended_at is not None:
        raise SessionEnded(end_reason)
    if token_issued_at is not None and token_issued_at < not_before:
        raise StaleAccessToken()
    reason = _expiry(absolute_expires_at, last_active_at, policy, now)
    if reason:
        with write_transaction():
            _end(sid, uid, reason, now)
        raise SessionEnded(reason)
    if now - last_active_at >= LAST_ACTIVE_RESOLUTION:
        _touch(sid, now)
    return Principal(uid, user_public_id, email, sid, public_id, authenticated_at,
                     current_hash, bool(seen))


def _touch(session_id: int, now: float) -> None:
    LoginSession.update(last_active_at=now).where(LoginSession.id == session_id).execute()


def mark_successor_seen(principal: Principal, handle: str, keys: tokens.Keys) -> None:
    """Record that a request carried the session's newest value (its response arrived).

    After this, the predecessor is honoured only inside the grace window.
    """
    if principal.successor_seen or not handle:
        return
    digest = tokens.token_hash(tokens.refresh_token(keys, handle))
    if tokens.hashes_equal(digest, principal.current_hash):
        (LoginSession.update(successor_seen=True)
         .where(LoginSession.id == principal.session_id,
                LoginSession.current_hash == principal.current_hash)
         .execute())


def revoke(session_public_id: str, *, user_id: int, reason: str, now: float,
           ip_address: str = "", actor: str = "") -> None:
    """End one of ``user_id``'s sessions, from the session ``actor`` (a public id).
    Someone else's session, or a value that is no public id at all, is SessionNotFound."""
    if not tokens.is_public_id(session_public_id):
        raise SessionNotFound()
    session = LoginSession.get_or_none(LoginSession.public_id == session_public_id,
                                       LoginSession.user == user_id,
                                       LoginSession.ended_at.is_null())
    if session is None:
        raise SessionNotFound()
    with write_transaction():
        _end(session.id, user_id, reason, now, ip_address, _ended_by(session, actor))


def revoke_all(user_id: int, *, reason: str, now: float, keep: int | None = None,
               ip_address: str = "", actor: str = "") -> int:
    """End every live session of the user except ``keep``; return how many were ended."""
    query = LoginSession.select().where(LoginSession.user == user_id,
                                        LoginSession.ended_at.is_null())
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    with write_transaction():
        ended = list(query)
        for session in ended:
            _end(session.id, user_id, reason, now, ip_address, _ended_by(session, actor))
    return len(ended)


def rekey(principal: Principal, *, keys: tokens.Keys, policy: Policy, now: float) -> Issued:
    """Give the current session a fresh random value that no copy of the old one leads to, and
    refuse every access token issued before it.

    Used after a password change and "sign out all other sessions", so that a thief holding a
    copy of this browser's cookies is cut off too. Under the session's row lock, like rotate.
    A replaced value presented within the grace window (a request already in flight) is
    refused without revoking; after it, presenting it is reuse and ends the session.
    """
    handle = tokens.new_handle()
    digest = tokens.token_hash(tokens.refresh_token(keys, handle))
    with write_transaction():
        session = locked(LoginSession.select()
                         .where(LoginSession.id == principal.session_id)).get()
        RefreshToken.create(token_hash=digest, session=session,
                            generation=session.generation + 1, issued_at=now)
        session.generation += 1
        session.current_hash = digest
        session.rotated_at = session.rekeyed_at = now
        session.rekey_generation = session.generation
        # One second past any token issued so far, this one included (iat is whole seconds):
        # the new token is dated then, well inside the verifier's leeway.
        session.access_not_before = _issued_at(now) + 1
        session.successor_seen = False
        session.save()
    return _issue(keys, policy, session, principal.user_public_id, handle, now,
                  issued_at=session.access_not_before)


def reauthenticated(session_id: int, *, now: float) -> None:
    """The person has just entered their password again in this session."""
    LoginSession.update(authenticated_at=now).where(LoginSession.id == session_id).execute()


def list_active(user_id: int, *, policy: Policy, now: float) -> list[LoginSession]:
    return list(LoginSession.select()
                .where(LoginSession.user == user_id, LoginSession.ended_at.is_null(),
                       LoginSession.absolute_expires_at > now,
                       LoginSession.last_active_at > now - policy.idle_ttl)
                .order_by(LoginSession.last_active_at.desc()))


def list_ended(user_id: int, *, since: float, limit: int = 20) -> list[LoginSession]:
    return list(LoginSession.select()
                .where(LoginSession.user == user_id, LoginSession.ended_at > since)
                .order_by(LoginSession.ended_at.desc()).limit(limit))


def prune(*, policy: Policy, now: float, keep_ended_for: int = 30 * 24 * 3600) -> int:
    """Delete sessions (and their tokens) that ended or expired more than ``keep_ended_for``
    seconds ago. Recently ended ones stay so the sessions page can say why they ended."""
    cutoff = now - keep_ended_for
    stale = LoginSession.select(LoginSession.id).where(
        (LoginSession.ended_at < cutoff)
        | (LoginSession.absolute_expires_at < cutoff)
        | (LoginSession.last_active_at < cutoff - policy.idle_ttl))
    with write_transaction():
        ids = [row.id for row in stale]
        RefreshToken.delete().where(RefreshToken.session.in_(ids)).execute()
        return LoginSession.delete().where(LoginSession.id.in_(ids)).execute()
