"""A session in use: the two operations every authenticated request runs, one or the other.

``check_live`` for a request with a verified access token (nearly all of them), ``rotate`` for
one that presents the session value instead. Both decide on a ``SessionState`` with the rules
and write only what the decision needs; their guarantees are stated at the top of
``sessions.store``. Fixed SQL rather than ORM queries: building them cost more than running
them, and on SQLite the write lock is held meanwhile.
"""

from __future__ import annotations

from app import audit, config, devices, liveness, tokens
from app.db import engine, fetch_one, write_transaction
from app.db.engine import INSERT_TOKEN_SQL
from app.liveness import Memory
from app.models import LoginSession
from app.sessions import store
from app.sessions.rules import (
    Issued,
    KeyProofMissing,
    Policy,
    SessionEnded,
    SessionError,
    SessionNotFound,
    forgiveness,
    holder_failure,
    issue,
    liveness_failure,
    rotation_failure,
    use_to_record,
)
from app.sessions.state import COLUMNS, FROM, Principal, SessionState, from_row

# The presented value's generation and its session; a session by public id; by id, to lock.
_BY_TOKEN_SQL = (f"SELECT t.generation, {COLUMNS} FROM refresh_token t JOIN login_session s "
                 'ON s.id = t.session_id JOIN "user" u ON u.id = s.user_id '
                 "WHERE t.token_hash = {p}")
_BY_PUBLIC_ID_SQL = f"SELECT {COLUMNS} FROM {FROM} WHERE s.public_id = {{p}}"
_BY_ID_SQL = f"SELECT {COLUMNS} FROM {FROM} WHERE s.id = {{p}}"
_ADVANCE_SQL = ("UPDATE login_session SET generation = {p}, current_hash = {p}, rotated_at = {p}, "
                "successor_seen = {p}, last_active_at = {p}, last_ip_address = {p}, "
                "last_device_name = CASE WHEN last_user_agent = {p} THEN last_device_name "
                "ELSE {p} END, last_user_agent = {p} WHERE id = {p}")


def rotate(handle: str, *, keys: tokens.Keys, policy: Policy, now: float,
           ip_address: str = "", user_agent: str = "",
           proven_key: str = "", client_id: str = "") -> tuple[Issued, Principal]:
    """Exchange a session handle for its successor and a new access token; return them with
    the request's Principal (no second lookup). ``proven_key``: the thumbprint of the key
    the request proved it holds, for a session bound to one; ``client_id``: the app
    presenting it ("" for a browser), whose session it must be (``rules.holder_failure``).

    The common case, the current value presented from where the session was last seen, is
    decided on the state read without a lock and written by the engine's ``swap`` only if
    nothing the rules read has changed since. Anything else (a parallel request that rotated
    first, a lost response, reuse, an ended session, a new address or browser) is decided
    again under the row lock.
    """
    successor = tokens.successor_handle(keys, handle)
    successor_hash = tokens.token_hash(tokens.refresh_token(keys, successor))
    presented = None
    for digest in keys.presented_hashes(handle):  # under SECRET_KEY, then its fallbacks
        presented = fetch_one(_BY_TOKEN_SQL, digest, hot=True)
        if presented is not None:
            break
    else:
        raise SessionNotFound()
    generation, session = presented[0], from_row(presented[1:])
    if (mismatch := holder_failure(session, client_id)) is not None:
        raise mismatch  # before any lock: nothing is written for someone else's value
    agent = (user_agent or session.last_user_agent)[:512]
    address = (ip_address or session.last_ip_address)[:64]
    if (generation == session.generation
            and (agent, address) == (session.last_user_agent, session.last_ip_address)
            and rotation_failure(session, generation, successor_hash, policy, now,
                                 proven_key) is None
            and engine().swap(session.id, session.generation, successor_hash, now,
                              session.credential_epoch, session.user_epoch)):
        advanced, failure = True, None
    else:
        advanced, failure, session = _rotate_locked(session.id, generation, successor_hash,
                                                    policy, now, ip_address, user_agent,
                                                    proven_key)
    if failure is not None:
        raise failure
    if not advanced:  # a parallel request, or a lost response's successor presented later
        _record_use(session, now, use_to_record(session, False, now, ip_address, user_agent))
    if advanced:
        audit.note(audit.ROTATED, now=now, user=session.user_id, session=session.id,
                   generation=session.generation + 1, ip=ip_address)
    else:
        audit.note(audit.ROTATION_REPEATED, now=now, user=session.user_id, session=session.id,
                   generation=session.generation, ip=ip_address,
                   forgiven=forgiveness(session, policy, now))
    issued = issue(keys, policy, public_id=session.public_id,
                   absolute_expires_at=session.absolute_expires_at,
                   user_public_id=session.user_public_id, handle=successor,
                   generation=session.generation + advanced, now=now,
                   client_id=session.client_id,
                   key_thumbprint=session.key_thumbprint if session.client_id else "")
    return issued, session.principal


def _rotate_locked(session_id: int, generation: int, successor_hash: str, policy: Policy,
                   now: float, ip_address: str, user_agent: str,
                   proven_key: str) -> tuple[bool, SessionError | None, SessionState]:
    """Decide and write under the session's row lock: whether it advanced, why it could not
    (if it could not), and the session as read."""
    with write_transaction():
        # Read under the lock: a parallel request may have rotated while we waited.
        row = fetch_one(_BY_ID_SQL + engine().row_lock, session_id)
        if row is None:  # pruned since the token was read
            raise SessionNotFound()
        session = from_row(row)
        failure = rotation_failure(session, generation, successor_hash, policy, now,
                                   proven_key)
        advanced = failure is None and generation == session.generation
        if advanced:
            advance(session, successor_hash, now, ip_address, user_agent)
        elif isinstance(failure, SessionEnded) and session.ended_at is None:
            store.end(session.id, session.user_id, failure.reason or "", now, ip_address)
        elif isinstance(failure, SessionEnded):
            _refused(session, now, ip_address)
        elif isinstance(failure, KeyProofMissing):
            _refused(session, now, ip_address, audit.KEY_MISSING)
    return advanced, failure, session


def advance(session: SessionState, successor_hash: str, now: float, ip_address: str,
            user_agent: str) -> None:
    """Write a rotation decided under the row lock (in its transaction): the session advanced
    to its successor, the successor's token, the change logged. The latest address and device
    ride along in the same update; the device's name is parsed only when the User-Agent
    changed."""
    agent = (user_agent or session.last_user_agent)[:512]
    address = (ip_address or session.last_ip_address)[:64]
    name = devices.describe(agent)[:128] if agent != session.last_user_agent else ""
    engine().run(_ADVANCE_SQL, session.generation + 1, successor_hash, now, False, now,
                 address, agent, name, agent, session.id)
    engine().run(INSERT_TOKEN_SQL, successor_hash, session.id, session.generation + 1, now)
    liveness.announce(session_id=session.id, now=now, confirmed=False)
    changes: dict[str, object] = {}
    if address != session.last_ip_address:
        changes["last_ip_address"] = address
    if agent != session.last_user_agent:
        changes["last_user_agent"] = agent
    _note_changes(session, now, changes)


def _note_changes(session: SessionState, now: float, changes: dict[str, object]) -> None:
    """An event for a new address or browser of a session, for its timeline: the first
    CHANGES_NOTED of them (a browser hopping between networks must not fill the table)."""
    if "last_ip_address" not in changes and "last_user_agent" not in changes:
        return
    if not (LoginSession.update(changes_noted=LoginSession.changes_noted + 1)
            .where(LoginSession.id == session.id, LoginSession.changes_noted < config.CHANGES_NOTED)
            .execute()):
        return
    address = str(changes.get("last_ip_address", ""))
    if address:
        audit.record(audit.ADDRESS_CHANGED, user=session.user_id, session=session.id,
                     ip=address, now=now, detail=address)
    if "last_user_agent" in changes:
        audit.record(audit.DEVICE_CHANGED, user=session.user_id, session=session.id,
                     ip=address, now=now,
                     detail=devices.describe(str(changes["last_user_agent"])))


def _refused(session: SessionState, now: float, ip_address: str,
             kind: str = audit.REFUSED_USE) -> None:
    """A request presented the value of a session that had ended (or, ``kind`` KEY_MISSING,
    of a bound session without its key) and was refused: counted, with its time and address;
    an event of its own for the first REFUSED_DETAIL. One statement that returns the count it
    wrote: concurrent refusals queue on the row, and each sees its own number."""
    ((count,),) = (LoginSession.update(refused_uses=LoginSession.refused_uses + 1,
                                       last_refused_at=now, last_refused_ip=ip_address[:64])
                   .where(LoginSession.id == session.id)
                   .returning(LoginSession.refused_uses).tuples().execute())
    if count <= config.REFUSED_DETAIL:
        audit.record(kind, user=session.user_id, session=session.id, ip=ip_address, now=now)


def check_live(claims: tokens.AccessClaims, *, policy: Policy, now: float,
               ip_address: str = "", user_agent: str = "",
               memory: Memory | None = None) -> Principal:
    """The per-request liveness check behind immediate revocation, for a verified access
    token: the session's state, remembered or read, judged by the rules; a write only when
    something changed (``use_to_record``). It ends a session that has just run out, or whose
    token shows a copy (recording ``ip_address``).

    With ``memory`` (up to date with every change: ``liveness.trusted_memory``), the
    remembered state stands in for the read when the rules find it live; any other verdict is
    reached on the stored row, which the memory may lag (an older "last active", a generation
    since rotated), so that nothing is refused or ended on it.

    Raises what ``rules.liveness_failure`` decides: SessionNotFound, SessionEnded,
    StaleAccessToken or KeyProofMissing (an older token of a bound session: refused and
    recorded, nothing ended).
    """
    # Read before the state is: a change forgotten meanwhile (by the listening thread) then
    # keeps what this request writes back from being remembered over it.
    version = memory.version if memory is not None else 0
    if memory is not None:
        remembered = memory.get(claims.session_id)
        if remembered is not None and liveness_failure(remembered, policy, now, claims) is None:
            _use(remembered, claims, memory, version, now, ip_address, user_agent,
                 remember=False)
            return remembered.principal
    found = fetch_one(_BY_PUBLIC_ID_SQL, claims.session_id, hot=True)
    if found is None:
        raise SessionNotFound()
    session = from_row(found)
    failure = liveness_failure(session, policy, now, claims)
    if isinstance(failure, SessionEnded):
        with write_transaction():
            if session.ended_at is None:
                store.end(session.id, session.user_id, failure.reason or "", now, ip_address)
            else:
                _refused(session, now, ip_address)
    elif isinstance(failure, KeyProofMissing):
        with write_transaction():
            _refused(session, now, ip_address, audit.KEY_MISSING)
    if failure is not None:
        raise failure
    _use(session, claims, memory, version, now, ip_address, user_agent, remember=True)
    return session.principal


def _use(session: SessionState, claims: tokens.AccessClaims, memory: Memory | None,
         version: int, now: float, ip_address: str, user_agent: str, *,
         remember: bool) -> None:
    """Write what this request changes, and remember the state as written (``remember``, or
    when something was)."""
    changes = use_to_record(session, claims.generation == session.generation, now,
                            ip_address, user_agent)
    _record_use(session, now, changes)
    if memory is not None and (changes or remember):
        memory.put(session, version, changes)


def _record_use(session: SessionState, now: float, changes: dict[str, object]) -> None:
    if not changes:
        return
    columns = dict(changes)
    if "last_user_agent" in changes:  # a new device: its name is parsed now, once
        columns["last_device_name"] = devices.describe(str(changes["last_user_agent"]))[:128]
    # Not over a rotation that happened meanwhile: that one wrote its own state.
    if (LoginSession.update(**columns)
            .where(LoginSession.id == session.id, LoginSession.generation == session.generation)
            .execute()):
        _note_changes(session, now, changes)
