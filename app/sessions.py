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

# Seconds: "last active" is written at most this often per session, so the idle limit counts
# from the latest moment the last request could have been, and may run this much longer.
LAST_ACTIVE_RESOLUTION = 60


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


def idle_deadline(last_active_at: float, policy: Policy) -> float:
    """When a session whose "last active" reads ``last_active_at`` has been idle too long.

    That column lags the real last request by up to LAST_ACTIVE_RESOLUTION, so the limit
    counts from the latest the request could have been: never shorter than configured.
    """
    return last_active_at + policy.idle_ttl + LAST_ACTIVE_RESOLUTION


def expires_at(session: LoginSession, policy: Policy) -> float:
    """``min(last activity + idle timeout, sign-in + absolute lifetime)``."""
    return min(idle_deadline(session.last_active_at, policy), session.absolute_expires_at)


def start(user: User, *, keys: tokens.Keys, policy: Policy, now: float, user_agent: str,
          ip_address: str) -> Issued:
    """Begin a new session (a new token family) for ``user``, who has just proved who they are."""
    handle = tokens.new_handle()
    digest = tokens.token_hash(tokens.refresh_token(keys, handle))
    with write_transaction():
        session = LoginSession.create(
            public_id=tokens.new_public_id(), user=user, created_at=now, authenticated_at=now,
            last_active_at=now, absolute_expires_at=now + policy.max_age, current_hash=digest,
            rotated_at=now, credential_epoch=user.credential_epoch, user_agent=user_agent[:512],
            ip_address=ip_address[:64], last_user_agent=user_agent[:512],
            last_ip_address=ip_address[:64],
        )
        RefreshToken.create(token_hash=digest, session=session, generation=0, issued_at=now)
        audit.record("sign_in", user=user.id, session=session.id, ip=ip_address, now=now)
    return _issue(keys, policy, session, user.public_id, handle, 0, now)


def rotate(handle: str, *, keys: tokens.Keys, policy: Policy, now: float,
           ip_address: str = "") -> Issued:
    """Exchange a session handle for its successor and a new access token.

    Guarantees, across threads, processes and instances sharing the database:

    * atomic: the swap and its bookkeeping are one transaction holding the session's row lock;
      an error anywhere leaves the previous value as the only valid one;
    * idempotent: every request presenting the same value gets the same successor handle;
      presenting the immediate predecessor is honoured within ``policy.grace`` seconds of the
      rotation, and after it while the successor is unproven (the response delivering it may
      have been lost), for at most ``policy.lost_response_window`` seconds after the rotation;
    * anything else that was superseded ends the session (``ReuseDetected``), recording
      ``ip_address`` as the address that presented it.

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
    return _issue(keys, policy, session, row[-1], successor, session.generation + advanced,
                  now)


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
    rekey_generation: int
    last_active_at: float
    absolute_expires_at: float
    ended_at: float | None
    end_reason: str | None
    credential_epoch: int
    user_epoch: int
    user_epoch_reason: str


_TOKEN_SQL = "SELECT session_id, generation FROM refresh_token WHERE token_hash = {p}"
_ROTATE_SQL = (
    "SELECT s.id, s.public_id, s.user_id, s.generation, s.current_hash, s.rotated_at, "
    "s.successor_seen, s.rekeyed_at, s.rekey_generation, s.last_active_at, "
    "s.absolute_expires_at, s.ended_at, s.end_reason, s.credential_epoch, "
    'u.credential_epoch, u.credential_reason, u.public_id '
    'FROM login_session s JOIN "user" u ON u.id = s.user_id WHERE s.id = {p}'
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


def _liveness_failure(session: _Family | _Live, policy: Policy,
                      now: float) -> SessionError | None:
    """Why the session is not live: ended, older than its person's last credential change
    (however late its row was written), or run out by ``now``."""
    if session.ended_at is not None:
        return SessionEnded(session.end_reason)
    if session.credential_epoch < session.user_epoch:
        return SessionEnded(session.user_epoch_reason or PASSWORD_CHANGED)
    reason = _expiry(session.absolute_expires_at, session.last_active_at, policy, now)
    return SessionEnded(reason) if reason else None


def _expiry(absolute_expires_at: float, last_active_at: float, policy: Policy,
            now: float) -> str | None:
    """Why a session has run out by ``now``, if it has: its absolute lifetime, or idleness."""
    if now >= absolute_expires_at:
        return EXPIRED
    if now >= idle_deadline(last_active_at, policy):
        return IDLE_TIMEOUT
    return None


def _reuse_failure(session: _Family, generation: int, successor_hash: str, policy: Policy,
                   now: float) -> SessionError | None:
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
    updated = (LoginSession.update(ended_at=now, end_reason=reason,
                                   end_ip_address=ip_address[:64])
               .where(LoginSession.id == session_id, LoginSession.ended_at.is_null())
               .execute())
    if updated:
        audit.record(reason, user=user_id, session=session_id, ip=ip_address, now=now,
                     detail=detail)


def _ended_by(session: LoginSession, actor: str) -> str:
    """The event detail of a revocation: which session ended, and from which one."""
    return f"session {session.public_id} ended by session {actor}" if actor else ""


def _issue(keys: tokens.Keys, policy: Policy, session: LoginSession | _Family,
           user_public_id: str, handle: str, generation: int, now: float) -> Issued:
    """The cookies for ``handle`` (of ``generation``) and a new access token issued with it.

    The session cookie outlives the idle limit by an access token's lifetime: a browser that
    keeps using its access token is active without presenting the session value.
    """
    issued_at = _issued_at(now)
    remaining = max(0, int(session.absolute_expires_at) - issued_at)
    access_ttl = min(policy.access_ttl, remaining)
    access = tokens.encode_access(keys, issuer=policy.issuer, user_id=user_public_id,
                                  session_id=session.public_id, generation=generation,
                                  now=issued_at, expires_at=issued_at + access_ttl)
    handle_ttl = policy.idle_ttl + policy.access_ttl + LAST_ACTIVE_RESOLUTION
    return Issued(session.public_id, handle, min(handle_ttl, remaining), access, access_ttl)


def _issued_at(now: float) -> int:
    # Rounded up, so that a cookie's Max-Age never outlives the token's ``exp``.
    return math.ceil(now)


@dataclass(frozen=True)
class _Live:
    """The columns the per-request liveness check reads, in one indexed lookup."""

    id: int
    public_id: str
    ended_at: float | None
    end_reason: str | None
    absolute_expires_at: float
    last_active_at: float
    authenticated_at: float
    generation: int
    rotated_at: float
    successor_seen: bool
    rekey_generation: int
    credential_epoch: int
    last_ip_address: str
    last_user_agent: str
    user_id: int
    user_public_id: str
    email: str
    user_epoch: int
    user_epoch_reason: str


_LIVENESS_SQL = (
    "SELECT s.id, s.public_id, s.ended_at, s.end_reason, s.absolute_expires_at, "
    "s.last_active_at, s.authenticated_at, s.generation, s.rotated_at, s.successor_seen, "
    "s.rekey_generation, s.credential_epoch, s.last_ip_address, s.last_user_agent, "
    'u.id, u.public_id, u.email, u.credential_epoch, u.credential_reason '
    'FROM login_session s JOIN "user" u ON u.id = s.user_id WHERE s.public_id = {p}'
)


def check_live(session_public_id: str, *, policy: Policy, now: float,
               token_generation: int | None = None, ip_address: str = "",
               user_agent: str = "") -> Principal:
    """The per-request liveness check behind immediate revocation: one indexed lookup.

    ``token_generation`` is that of the access token the request carries, if any: one issued
    with the newest value proves that value delivered; one issued with a superseded value
    after the grace window shows that someone else rotated, which is reuse. Raises
    SessionNotFound or SessionEnded (ending the session first when it has just run out or
    been caught), or StaleAccessToken for a token issued before the session was re-keyed.
    """
    row = _fetch(_LIVENESS_SQL, session_public_id)
    if row is None:
        raise SessionNotFound()
    live = _Live(*row)
    failure = (_liveness_failure(live, policy, now)
               or _token_failure(live, token_generation, policy, now))
    if isinstance(failure, SessionEnded) and live.ended_at is None:
        with write_transaction():
            _end(live.id, live.user_id, failure.reason, now, ip_address)
    if failure is not None:
        raise failure
    _record_use(live, token_generation == live.generation, now, ip_address, user_agent)
    return Principal(live.user_id, live.user_public_id, live.email, live.id, live.public_id,
                     live.authenticated_at)


def _token_failure(live: _Live, generation: int | None, policy: Policy,
                   now: float) -> SessionError | None:
    if generation is None or generation == live.generation:
        return None
    if generation < live.rekey_generation:
        return StaleAccessToken()
    if generation > live.generation:  # signed by us, yet never issued: refuse it
        return SessionNotFound()
    # A browser rotates only once its access token has expired, so a token of the previous
    # value is still in use only in requests that were in flight (a parallel tab).
    if generation == live.generation - 1 and now - live.rotated_at <= policy.grace:
        return None
    return ReuseDetected()


def _record_use(live: _Live, proves: bool, now: float, ip_address: str,
                user_agent: str) -> None:
    """One write, when anything changed: the newest value proven, "last active" (at most
    once per LAST_ACTIVE_RESOLUTION), or the address or device of the latest request."""
    changes: dict[str, object] = {}
    if proves and not live.successor_seen:
        changes["successor_seen"] = True
    if now - live.last_active_at >= LAST_ACTIVE_RESOLUTION:
        changes["last_active_at"] = now
    if ip_address and ip_address[:64] != live.last_ip_address:
        changes["last_ip_address"] = ip_address[:64]
    if user_agent and user_agent != live.last_user_agent:
        changes["last_user_agent"] = user_agent
    if changes:
        # Not over a rotation that happened meanwhile: that one wrote its own state.
        (LoginSession.update(**changes)
         .where(LoginSession.id == live.id, LoginSession.generation == live.generation)
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
    """End every live session of the user except ``keep``; return how many were ended.

    A credential change: it also moves the user's credential epoch on (``keep`` moves with
    it), so that a sign-in whose password was checked before this, but whose session row is
    written after it, is not live either.
    """
    query = LoginSession.select().where(LoginSession.user == user_id,
                                        LoginSession.ended_at.is_null())
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    with write_transaction():
        User.update(credential_epoch=User.credential_epoch + 1, credential_reason=reason).where(
            User.id == user_id).execute()
        if keep is not None:
            epoch = User.select(User.credential_epoch).where(User.id == user_id)
            LoginSession.update(credential_epoch=epoch).where(LoginSession.id == keep).execute()
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
        # Every access token issued with an older generation is refused from now on.
        session.rekey_generation = session.generation
        session.successor_seen = False
        session.save()
    return _issue(keys, policy, session, principal.user_public_id, handle, session.generation,
                  now)


def reauthenticated(session_id: int, *, now: float) -> None:
    """The person has just entered their password again in this session."""
    LoginSession.update(authenticated_at=now).where(LoginSession.id == session_id).execute()


def list_active(user_id: int, *, policy: Policy, now: float) -> list[LoginSession]:
    return list(LoginSession.select()
                .join(User)
                .where(LoginSession.user == user_id, LoginSession.ended_at.is_null(),
                       LoginSession.credential_epoch >= User.credential_epoch,
                       LoginSession.absolute_expires_at > now,
                       LoginSession.last_active_at > now - policy.idle_ttl
                       - LAST_ACTIVE_RESOLUTION)
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
        | (LoginSession.last_active_at < cutoff - policy.idle_ttl - LAST_ACTIVE_RESOLUTION))
    with write_transaction():
        ids = [row.id for row in stale]
        RefreshToken.delete().where(RefreshToken.session.in_(ids)).execute()
        return LoginSession.delete().where(LoginSession.id.in_(ids)).execute()
