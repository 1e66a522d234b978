"""The session store: the named operations on sessions, each one transaction with stated
guarantees, reading the state ``session_rules`` decides on and writing the outcome.

A session is one refresh-token family; ending it ends every token it ever had, access tokens
included, because the middleware checks liveness on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from peewee import JOIN, Case, ModelSelect, Select, fn

from app import audit, devices, session_changes, tokens
from app.db import execute, fetch_one, is_postgres, locked, write_transaction
from app.models import KnownDevice, LoginSession, RefreshToken, User
from app.session_rules import (
    LAST_ACTIVE_RESOLUTION,
    SESSION_LIMIT,
    Family,
    Issued,
    LiveRow,
    Policy,
    Principal,
    SessionEnded,
    SessionError,
    SessionNotFound,
    issue,
    liveness_failure,
    rotated_principal,
    rotation_failure,
    use_to_record,
)

# What a thief holding an ended session's cookie can make us store: an event for each of the
# first REFUSED_DETAIL refused requests, then only a count and the latest time and address.
REFUSED_DETAIL = 20
# Events for a session's changes of address or browser; later changes only update its row.
CHANGES_NOTED = 50
REFUSED_USE = "refused_use"
ADDRESS_CHANGED = "address_changed"
DEVICE_CHANGED = "device_changed"
REAUTHENTICATED = "reauthenticated"


def start(user: User, *, keys: tokens.Keys, policy: Policy, now: float, user_agent: str,
          ip_address: str, new_device: bool = False, device_hash: str = "",
          method: str = "password") -> Issued:
    """Begin a new session (a new token family) for ``user``, who has just proved who they are
    (``new_device``: from a browser that has not signed in to this account before, whose
    device cookie hashes to ``device_hash``), by ``method`` ("password", "reset").

    The person keeps at most ``policy.max_sessions`` live sessions: the least recently used
    beyond that end here, with their reason, in the same transaction. The device name is
    parsed from the User-Agent now, once, and stored.
    """
    handle = tokens.new_handle()
    digest = tokens.token_hash(tokens.refresh_token(keys, handle))
    device_name = devices.describe(user_agent)[:128]
    with write_transaction():
        _end_least_recently_used(user.id, keep=policy.max_sessions - 1, now=now)
        session = LoginSession.create(
            public_id=tokens.new_public_id(), user=user, created_at=now, authenticated_at=now,
            last_active_at=now, absolute_expires_at=now + policy.max_age, current_hash=digest,
            rotated_at=now, credential_epoch=user.credential_epoch, user_agent=user_agent[:512],
            device_name=device_name, ip_address=ip_address[:64],
            last_user_agent=user_agent[:512], last_ip_address=ip_address[:64],
            last_device_name=device_name, device_hash=device_hash, start_method=method,
        )
        RefreshToken.create(token_hash=digest, session=session, generation=0, issued_at=now)
        audit.record("sign_in", user=user.id, session=session.id, ip=ip_address, now=now,
                     detail=audit.NEW_DEVICE if new_device else "")
    return issue(keys, policy, session, user.public_id, handle, 0, now)


def _end_least_recently_used(user_id: int, *, keep: int, now: float) -> None:
    """End the person's sessions beyond the ``keep`` most recently used. The work is bounded:
    after the first sign-in at the cap, at most one session is over it at a time.

    The person's row is locked first (SQLite's write lock already is one), so that parallel
    sign-ins of one person, on any instance, take turns and never both fit under the cap.
    """
    # NO KEY: a row inserted meanwhile that refers to the person (a security event) takes a key
    # share lock on it, which FOR UPDATE would block: a deadlock with this very transaction.
    locked(User.select(User.id).where(User.id == user_id), "FOR NO KEY UPDATE").execute()
    over = (LoginSession.select(LoginSession.id)
            .where(LoginSession.user == user_id, LoginSession.ended_at.is_null())
            .order_by(LoginSession.last_active_at.desc(), LoginSession.id.desc())
            .offset(keep))
    for session in list(over):
        _end(session.id, user_id, SESSION_LIMIT, now)


def rotate(handle: str, *, keys: tokens.Keys, policy: Policy, now: float,
           ip_address: str = "", user_agent: str = "") -> tuple[Issued, Principal]:
    """Exchange a session handle for its successor and a new access token; return them with
    the request's Principal (no second liveness lookup).

    Guarantees, across threads, processes and instances sharing the database:

    * atomic: the swap and its bookkeeping are written together or not at all; an error
      anywhere leaves the previous value as the only valid one;
    * idempotent: every request presenting the same value gets the same successor handle;
      what else is forgiven, refused or ended is ``session_rules.rotation_failure``'s call,
      and a session it ends is ended here, in the same transaction, recording ``ip_address``
      as the address that presented the value.

    The common case, the current value presented from where the session was last seen, is
    decided on the session read without a lock and written by ``_swap`` only if nothing the
    rules read has changed since: on PostgreSQL two round trips in all, the read and one
    statement. Anything else (a parallel request that rotated first, a lost response, reuse,
    an ended session, a new address or browser) is decided again under the row lock.

    Fixed SQL rather than ORM queries: building them cost more than running them, and on
    SQLite the write lock is held meanwhile, so every other worker's rotation waited too.
    """
    successor = tokens.successor_handle(keys, handle)
    successor_hash = tokens.token_hash(tokens.refresh_token(keys, successor))
    presented = fetch_one(_PRESENTED_SQL, tokens.token_hash(tokens.refresh_token(keys, handle)),
                          prepared=True)
    if presented is None:
        raise SessionNotFound()
    generation, session = presented[0], Family(*presented[1:])
    agent = (user_agent or session.last_user_agent)[:512]
    address = (ip_address or session.last_ip_address)[:64]
    if (generation == session.generation
            and (agent, address) == (session.last_user_agent, session.last_ip_address)
            and rotation_failure(session, generation, successor_hash, policy, now) is None
            and _swap(session, successor_hash, now)):
        advanced, failure = True, None
    else:
        advanced, failure, session = _rotate_locked(session.id, generation, successor_hash,
                                                    policy, now, ip_address, user_agent)
    if failure is not None:
        raise failure
    if not advanced:  # a parallel request, or a lost response's successor presented later
        _record_use(session.id, session.user_id, session.generation, now,
                    use_to_record(session, False, now, ip_address, user_agent))
    audit.note("rotated" if advanced else "rotation_repeated", now=now, user=session.user_id,
               session=session.id, generation=session.generation + advanced, ip=ip_address)
    issued = issue(keys, policy, session, session.user_public_id, successor,
                   session.generation + advanced, now)
    return issued, rotated_principal(session)


def _swap(session: Family, successor_hash: str, now: float) -> bool:
    """Advance ``session`` as read, unless it changed since: the generation moved, it ended,
    or it was re-keyed. Logged as a session change (on PostgreSQL, with its NOTIFY, all in
    one statement). False when it changed: nothing was written."""
    guard = (session.generation + 1, successor_hash, now, now, session.id, session.generation,
             session.credential_epoch, session.user_epoch)
    if is_postgres():
        return fetch_one(_SWAP_PG_SQL, *guard, successor_hash, now, now,
                         prepared=True) is not None
    with write_transaction():
        if not execute(_SWAP_SQL, *guard).rowcount:
            return False
        _successor_stored(session, successor_hash, now)
    return True


def _successor_stored(session: Family, successor_hash: str, now: float) -> None:
    """The successor's token, and the change logged, of a session just advanced (in its
    transaction): workers that remember the old generation must learn it, to tell a stale
    token from reuse."""
    execute(_INSERT_TOKEN_SQL, successor_hash, session.id, session.generation + 1, now)
    session_changes.announce(session_id=session.id, now=now, confirmed=False)


def _rotate_locked(session_id: int, generation: int, successor_hash: str, policy: Policy,
                   now: float, ip_address: str,
                   user_agent: str) -> tuple[bool, SessionError | None, Family]:
    """Decide and write under the session's row lock: whether it advanced, why it could not
    (if it could not), and the session as read."""
    with write_transaction():
        # Read under the lock: a parallel request may have rotated while we waited.
        row = fetch_one(_ROTATE_SQL + (" FOR UPDATE OF s" if is_postgres() else ""), session_id)
        if row is None:  # pruned since the token was read
            raise SessionNotFound()
        session = Family(*row)
        failure = rotation_failure(session, generation, successor_hash, policy, now)
        advanced = failure is None and generation == session.generation
        if advanced:
            _advance(session, successor_hash, now, ip_address, user_agent)
        elif isinstance(failure, SessionEnded) and session.ended_at is None:
            _end(session.id, session.user_id, failure.reason or "", now, ip_address)
        elif isinstance(failure, SessionEnded):
            _refused(session.id, session.user_id, now, ip_address)
    return advanced, failure, session


_FAMILY_COLUMNS = (
    "s.id, s.public_id, s.user_id, s.generation, s.current_hash, s.rotated_at, "
    "s.successor_seen, s.rekeyed_at, s.rekey_generation, s.last_active_at, "
    "s.absolute_expires_at, s.ended_at, s.end_reason, s.credential_epoch, u.credential_epoch, "
    "u.credential_reason, s.last_ip_address, s.last_user_agent, s.authenticated_at, "
    "u.public_id, u.email"
)
# The presented value's generation and its session, as the rules read it.
_PRESENTED_SQL = (
    f"SELECT t.generation, {_FAMILY_COLUMNS} FROM refresh_token t "
    "JOIN login_session s ON s.id = t.session_id "
    'JOIN "user" u ON u.id = s.user_id WHERE t.token_hash = {p}'
)
_ROTATE_SQL = (
    f'SELECT {_FAMILY_COLUMNS} FROM login_session s JOIN "user" u ON u.id = s.user_id '
    "WHERE s.id = {p}"
)
_INSERT_TOKEN_SQL = ("INSERT INTO refresh_token (token_hash, session_id, generation, issued_at) "
                     "VALUES ({p}, {p}, {p}, {p})")
# The swap, guarded by what the rules decided on: the generation (a rotation or re-key since),
# the end, the session's credential epoch and its person's.
_SWAP_SQL = ("UPDATE login_session SET generation = {p}, current_hash = {p}, rotated_at = {p}, "
             "successor_seen = FALSE, last_active_at = {p} WHERE id = {p} AND generation = {p} "
             "AND ended_at IS NULL AND credential_epoch = {p} AND (SELECT credential_epoch "
             'FROM "user" WHERE id = login_session.user_id) = {p}')
_SWAP_PG_SQL = (
    f"WITH s AS ({_SWAP_SQL} RETURNING id, generation), "
    "t AS (INSERT INTO refresh_token (token_hash, session_id, generation, issued_at) "
    "SELECT CAST({p} AS TEXT), id, generation, CAST({p} AS DOUBLE PRECISION) FROM s), "
    + session_changes.LOG_SESSION_PG
)
_ADVANCE_SQL = ("UPDATE login_session SET generation = {p}, current_hash = {p}, rotated_at = {p}, "
                "successor_seen = {p}, last_active_at = {p}, last_ip_address = {p}, "
                "last_device_name = CASE WHEN last_user_agent = {p} THEN last_device_name "
                "ELSE {p} END, last_user_agent = {p} WHERE id = {p}")


def _advance(session: Family, successor_hash: str, now: float, ip_address: str,
             user_agent: str) -> None:
    # The latest address and device ride along in the same update, written or not; the
    # device's name is parsed only when the User-Agent changed.
    agent = (user_agent or session.last_user_agent)[:512]
    address = (ip_address or session.last_ip_address)[:64]
    name = devices.describe(agent)[:128] if agent != session.last_user_agent else ""
    execute(_ADVANCE_SQL, session.generation + 1, successor_hash, now, False, now,
            address, agent, name, agent, session.id)
    _successor_stored(session, successor_hash, now)
    changes: dict[str, object] = {}
    if address != session.last_ip_address:
        changes["last_ip_address"] = address
    if agent != session.last_user_agent:
        changes["last_user_agent"] = agent
    _note_changes(session.id, session.user_id, now, changes)


def _note_changes(session_id: int, user_id: int, now: float, changes: dict[str, object]) -> None:
    """An event for a new address or browser of a session, for its timeline: the first
    CHANGES_NOTED of them (a browser hopping between networks must not fill the table)."""
    if "last_ip_address" not in changes and "last_user_agent" not in changes:
        return
    if not (LoginSession.update(changes_noted=LoginSession.changes_noted + 1)
            .where(LoginSession.id == session_id, LoginSession.changes_noted < CHANGES_NOTED)
            .execute()):
        return
    address = str(changes.get("last_ip_address", ""))
    if address:
        audit.record(ADDRESS_CHANGED, user=user_id, session=session_id, ip=address, now=now,
                     detail=address)
    if "last_user_agent" in changes:
        audit.record(DEVICE_CHANGED, user=user_id, session=session_id, ip=address, now=now,
                     detail=devices.describe(str(changes["last_user_agent"])))


def _refused(session_id: int, user_id: int, now: float, ip_address: str) -> None:
    """A request presented the cookie of a session that had already ended, and was refused:
    counted, with its time and address; an event of its own for the first REFUSED_DETAIL.
    One statement that returns the count it wrote (as ``throttle.take`` does): concurrent
    refusals queue on the row, and each sees its own number."""
    ((count,),) = (LoginSession.update(refused_uses=LoginSession.refused_uses + 1,
                                       last_refused_at=now, last_refused_ip=ip_address[:64])
                   .where(LoginSession.id == session_id)
                   .returning(LoginSession.refused_uses).tuples().execute())
    if count <= REFUSED_DETAIL:
        audit.record(REFUSED_USE, user=user_id, session=session_id, ip=ip_address, now=now)


def _end(session_id: int, user_id: int, reason: str, now: float, ip_address: str = "",
         detail: str = "", actor: str = "") -> None:
    """End a session once: an already-ended one keeps its first reason and gets no new event.
    ``actor``: the public id of the session that signed it out, if one did."""
    updated = (LoginSession.update(ended_at=now, end_reason=reason,
                                   end_ip_address=ip_address[:64], ended_by=actor[:32])
               .where(LoginSession.id == session_id, LoginSession.ended_at.is_null())
               .execute())
    if updated:
        session_changes.announce(session_id=session_id, now=now)
        audit.record(reason, user=user_id, session=session_id, ip=ip_address, now=now,
                     detail=detail)


def _ended_by(session: LoginSession, actor: str) -> str:
    """The event detail of a revocation: which session ended, and from which one."""
    return f"session {session.public_id} ended by session {actor}" if actor else ""


_LIVENESS_SQL = (
    "SELECT s.id, s.public_id, s.ended_at, s.end_reason, s.absolute_expires_at, "
    "s.last_active_at, s.authenticated_at, s.generation, s.rotated_at, s.successor_seen, "
    "s.rekey_generation, s.credential_epoch, s.last_ip_address, s.last_user_agent, u.id, "
    "u.public_id, u.email, u.credential_epoch, u.credential_reason "
    'FROM login_session s JOIN "user" u ON u.id = s.user_id WHERE s.public_id = {p}'
)


def touch_live(claims: tokens.AccessClaims, *, policy: Policy, now: float,
               ip_address: str = "", user_agent: str = "",
               memory: session_changes.Memory | None = None) -> Principal:
    """The per-request liveness check behind immediate revocation, for a verified access
    token: one indexed lookup (the person's credential epoch comes in the same row), and a
    write only when something changed: the token's value proven, activity at most once a
    ``LAST_ACTIVE_RESOLUTION``, a new address or device. It ends a session that has just run
    out, or whose token shows a copy (recording ``ip_address``).

    With ``memory`` (up to date with every change: ``session_changes.trusted_memory``), the
    session's remembered facts stand in for the lookup when the rules find them live; any
    other verdict is reached on the stored row, which the facts may lag (an older "last
    active", a generation since rotated), so that nothing is refused or ended on them.

    Raises what ``session_rules.liveness_failure`` decides: SessionNotFound, SessionEnded or
    StaleAccessToken.
    """
    # Read before the facts are: a change forgotten meanwhile (by the listening thread) then
    # keeps what this request writes back from being remembered over it.
    version = memory.version if memory is not None else 0
    if memory is not None:
        remembered = memory.get(claims.session_id)
        if remembered is not None and liveness_failure(remembered, policy, now, claims) is None:
            _use(remembered, claims, memory, version, now, ip_address, user_agent,
                 remember=False)
            return remembered.principal
    found = fetch_one(_LIVENESS_SQL, claims.session_id, prepared=True)
    if found is None:
        raise SessionNotFound()
    (sid, public_id, ended_at, end_reason, absolute_expires_at, last_active_at,
     authenticated_at, *state, uid, user_public_id, email, user_epoch, user_epoch_reason) = found
    generation, rotated_at, seen, rekey_generation, epoch, last_ip, last_agent = state
    row = LiveRow(Principal(uid, user_public_id, email, sid, public_id, authenticated_at),
                  ended_at, end_reason, absolute_expires_at, last_active_at, generation,
                  rotated_at, bool(seen), rekey_generation, epoch, user_epoch,
                  user_epoch_reason, last_ip, last_agent)
    failure = liveness_failure(row, policy, now, claims)
    if isinstance(failure, SessionEnded):
        with write_transaction():
            if ended_at is None:
                _end(sid, uid, failure.reason or "", now, ip_address)
            else:
                _refused(sid, uid, now, ip_address)
    if failure is not None:
        raise failure
    _use(row, claims, memory, version, now, ip_address, user_agent, remember=True)
    return row.principal


def _use(row: LiveRow, claims: tokens.AccessClaims, memory: session_changes.Memory | None,
         version: int, now: float, ip_address: str, user_agent: str, *,
         remember: bool) -> None:
    """Write what this request changes, and remember the row as written (``remember``, or
    when something was)."""
    proves = claims.generation == row.generation
    changes = use_to_record(row, proves, now, ip_address, user_agent)
    principal = row.principal
    _record_use(principal.session_id, principal.user_id, row.generation, now, changes)
    if memory is not None and (changes or remember):
        memory.put(row, version, changes)


def _record_use(session_id: int, user_id: int, generation: int, now: float,
                changes: dict[str, object]) -> None:
    if "last_user_agent" in changes:  # a new device: its name is parsed now, once
        changes = {**changes,
                   "last_device_name": devices.describe(str(changes["last_user_agent"]))[:128]}
    if changes:
        # Not over a rotation that happened meanwhile: that one wrote its own state.
        if (LoginSession.update(**changes)
                .where(LoginSession.id == session_id, LoginSession.generation == generation)
                .execute()):
            _note_changes(session_id, user_id, now, changes)


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
        _end(session.id, user_id, reason, now, ip_address, _ended_by(session, actor), actor)


def revoke_device(user_id: int, device_hash: str, *, reason: str, now: float,
                  ip_address: str = "") -> int:
    """End every live session of ``user_id`` started in the browser ``device_hash``; return
    how many."""
    if not device_hash:
        return 0
    with write_transaction():
        ended = list(LoginSession.select(LoginSession.id).where(
            LoginSession.user == user_id, LoginSession.device_hash == device_hash,
            LoginSession.ended_at.is_null()))
        for session in ended:
            _end(session.id, user_id, reason, now, ip_address)
    return len(ended)


class Counted(NamedTuple):
    """How many sessions, on how many devices (``devices.key``)."""

    sessions: int
    devices: int


def revoke_all(user_id: int, *, reason: str, now: float, keep: int | None = None,
               ip_address: str = "", actor: str = "") -> Counted:
    """End every live session of the user except ``keep``; return how many were ended, and
    on how many devices.

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
        session_changes.announce(user_id=user_id, now=now)
        ended = list(query)
        for session in ended:
            _end(session.id, user_id, reason, now, ip_address, _ended_by(session, actor), actor)
    return Counted(len(ended), len({devices.key(session) for session in ended}))


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
        session_changes.announce(session_id=session.id, now=now)
    return issue(keys, policy, session, principal.user_public_id, handle, session.generation,
                 now)


def reauthenticated(session_id: int, *, now: float, ip_address: str = "") -> None:
    """The person has just entered their password again in this session (an event on its
    timeline)."""
    with write_transaction():
        LoginSession.update(authenticated_at=now).where(LoginSession.id == session_id).execute()
        session_changes.announce(session_id=session_id, now=now)
        user_id = LoginSession.select(LoginSession.user).where(
            LoginSession.id == session_id).scalar()
        audit.record(REAUTHENTICATED, user=user_id, session=session_id, ip=ip_address, now=now)


PAGE_SIZE = 20
MAX_PAGE = 50  # with PAGE_SIZE, the most rows any list request reads past


@dataclass(frozen=True)
class Page:
    """One page of a list: at most ``PAGE_SIZE`` rows, and whether another follows."""

    items: list
    number: int
    has_next: bool


def paged(query: Select, number: int) -> Page:
    """Page ``number`` (from 1) of ``query``; work bounded by MAX_PAGE * PAGE_SIZE rows."""
    number = min(max(1, number), MAX_PAGE)
    rows = list(query.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    return Page(rows[:PAGE_SIZE], number, len(rows) > PAGE_SIZE and number < MAX_PAGE)


def _named(query: ModelSelect[LoginSession]) -> ModelSelect[LoginSession]:
    """Sessions with the name the person gave their device (``chosen_name``, "" or None)."""
    return (query.select_extend(KnownDevice.name.alias("chosen_name"))
            .join_from(LoginSession, KnownDevice, JOIN.LEFT_OUTER,
                       on=(KnownDevice.user == LoginSession.user)
                       & (KnownDevice.device_hash == LoginSession.device_hash))
            .objects())


def _live(user_id: int, policy: Policy, now: float) -> ModelSelect[LoginSession]:
    return (LoginSession.select()
            .join(User)
            .where(LoginSession.user == user_id, LoginSession.ended_at.is_null(),
                   LoginSession.credential_epoch >= User.credential_epoch,
                   LoginSession.absolute_expires_at > now,
                   LoginSession.last_active_at > now - policy.idle_ttl - LAST_ACTIVE_RESOLUTION))


def list_active(user_id: int, *, policy: Policy, now: float, current: int | None = None,
                page: int = 1, device_hash: str = "") -> Page:
    """The person's live sessions with their devices' names: ``current`` first, then the
    others of its device (``device_hash``), then the most recently used."""
    first = [(LoginSession.id == current, 0)]
    if device_hash:
        first.append((LoginSession.device_hash == device_hash, 1))
    return paged(_named(_live(user_id, policy, now))
                 .order_by(Case(None, first, 2), LoginSession.last_active_at.desc(),
                           LoginSession.id.desc()), page)


def count_others(user_id: int, *, policy: Policy, now: float, keep: int) -> Counted:
    """How many live sessions other than ``keep`` the person has, on how many devices: what
    "sign out all other sessions" would end. One aggregate, over at most the session cap."""
    device = Case(None, [(LoginSession.device_hash == "", LoginSession.public_id)],
                  LoginSession.device_hash)
    counts: Select = (_live(user_id, policy, now).where(LoginSession.id != keep)
                      .select(fn.COUNT(LoginSession.id), fn.COUNT(device.distinct())))
    sessions, on = counts.tuples().get()
    return Counted(int(sessions), int(on))


def list_ended(user_id: int, *, since: float, page: int = 1) -> Page:
    return paged(_named(LoginSession.select()
                        .where(LoginSession.user == user_id, LoginSession.ended_at > since))
                 .order_by(LoginSession.ended_at.desc(), LoginSession.id.desc()), page)


def find(user_id: int, session_public_id: str) -> LoginSession:
    """One of ``user_id``'s sessions, live or ended, with its device's name; SessionNotFound
    for anyone else's, or a value that is no public id."""
    if not tokens.is_public_id(session_public_id):
        raise SessionNotFound()
    found = _named(LoginSession.select().where(LoginSession.user == user_id,
                                               LoginSession.public_id == session_public_id))
    session = found.first()
    if session is None:
        raise SessionNotFound()
    return session


def by_public_id(user_id: int, public_ids: set[str]) -> dict[str, LoginSession]:
    """Some of the person's sessions by public id (the ones that signed others out)."""
    if not public_ids:
        return {}
    rows = _named(LoginSession.select().where(LoginSession.user == user_id,
                                              LoginSession.public_id.in_(list(public_ids))))
    return {row.public_id: row for row in rows}


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
        removed: int = LoginSession.delete().where(LoginSession.id.in_(ids)).execute()
        session_changes.prune(now=now)
    return removed
