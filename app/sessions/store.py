"""The session store: every operation that changes a session, each one transaction.

A session is one refresh-token family; ending it ends every token it ever had, access tokens
included, because every request checks liveness. The store is the only writer of what that
check reads, and the only caller of ``liveness.announce``: every operation below that can make
a session not live logs the change in its own transaction. What each promises, across
threads, processes and instances sharing the database:

``start``
    A new family, its first token, the sign-in event; at most ``policy.max_sessions`` live
    per person: parallel sign-ins of one person take turns on their row, so the cap holds.
``use.rotate``
    Atomic and idempotent: every request presenting the same value gets the same successor;
    what is forgiven or ended is the rules' call, and an end is written in the same
    transaction. An error anywhere leaves the previous value the only valid one.
``use.check_live``
    Read-mostly; writes only what a request changes (its value proven, "last active" at most
    once a minute, a new address or browser). Ends a session that has run out or whose token
    shows a copy.
``revoke``, ``revoke_device``
    End sessions once: an already-ended one keeps its first reason. Immediate on every worker
    and instance before the call returns (``RevocationUnconfirmed`` when that cannot be shown).
``revoke_all``
    A credential change: moves the person's credential epoch on, so a session whose proof was
    checked before it is not live however late its row is written; no unused code an app
    holds starts one later.
``rekey``
    A fresh random value for the caller's session; every older access token refused. A
    session bound to a key keeps its value: only a proof of the key renews it.
``bind_key``
    From now on the session rotates only with a proof from that key; announced, so every
    worker judges it bound at once.
``proven_again``, ``set_email``
    Facts the liveness check reads, written and announced together.
``prune``
    Deletes what ended or expired long ago, and the change log behind every worker.
``age``
    Development only (the QA kit): moves a session's moments into the past, as time passing
    would; announced, so every worker judges the session on its row again.
"""

from __future__ import annotations

from typing import NamedTuple

from app import audit, devices, liveness, tokens
from app.config import KEEP_ENDED
from app.db import locked, write_transaction
from app.models import AuthorizationCode, LoginSession, RefreshToken, User
from app.sessions.rules import (
    SESSION_LIMIT,
    Issued,
    Policy,
    SessionNotFound,
    issue,
    rekey_keeps_value,
)
from app.sessions.state import CarriedProof, Method, Principal


def start(user: User, *, keys: tokens.Keys, policy: Policy, now: float, user_agent: str,
          ip_address: str, new_device: bool = False, device_hash: str = "",
          method: Method = Method.PASSWORD, client_id: str = "", app_name: str = "",
          key_thumbprint: str = "", carried: CarriedProof | None = None) -> Issued:
    """Begin a new session (a new token family) for ``user``, who has just proved who they are
    by ``method`` (``new_device``: from a browser that has not signed in to this account
    before, whose device cookie hashes to ``device_hash``; ``client_id``: of the app named
    ``app_name`` whose session it is, bound from the start to the key whose thumbprint is
    ``key_thumbprint``, if any). A session started on the strength of another one (an app's,
    from the browser session that consented) proved nothing itself: ``carried`` is that
    session's last proof and credential epoch, which the new one starts with, so that it is
    neither more recently proven nor newer than its source. The least recently used sessions
    beyond the cap end here, with their reason; the device name is parsed now, once."""
    handle = tokens.new_handle()
    digest = tokens.token_hash(tokens.refresh_token(keys, handle))
    device_name = devices.describe(user_agent)[:128]
    if app_name:
        device_name = f"{app_name} ({device_name})"[:128]
    with write_transaction():
        _end_least_recently_used(user.id, keep=policy.max_sessions - 1, now=now)
        session = LoginSession.create(
            public_id=tokens.new_public_id(), user=user, created_at=now,
            authenticated_at=carried.proven_at if carried else now,
            last_active_at=now, absolute_expires_at=now + policy.max_age, current_hash=digest,
            rotated_at=now, user_agent=user_agent[:512],
            credential_epoch=carried.credential_epoch if carried else user.credential_epoch,
            device_name=device_name, ip_address=ip_address[:64],
            last_user_agent=user_agent[:512], last_ip_address=ip_address[:64],
            last_device_name=device_name, device_hash=device_hash, start_method=method,
            client_id=client_id, key_thumbprint=key_thumbprint,
        )
        RefreshToken.create(token_hash=digest, session=session, generation=0, issued_at=now)
        audit.record(audit.SIGN_IN, user=user.id, session=session.id, ip=ip_address, now=now,
                     detail=audit.NEW_DEVICE if new_device else "", method=method)
    return issue(keys, policy, public_id=session.public_id,
                 absolute_expires_at=session.absolute_expires_at,
                 user_public_id=user.public_id, handle=handle, generation=0, now=now,
                 client_id=client_id, key_thumbprint=key_thumbprint)


def _end_least_recently_used(user_id: int, *, keep: int, now: float) -> None:
    """End the person's sessions beyond the ``keep`` most recently used: after the first
    sign-in at the cap, at most one at a time. The person's row is locked first (SQLite's
    write lock already is one)."""
    # NO KEY: a row inserted meanwhile that refers to the person (a security event) takes a key
    # share lock on it, which FOR UPDATE would block: a deadlock with this very transaction.
    locked(User.select(User.id).where(User.id == user_id), "FOR NO KEY UPDATE").execute()
    over = (LoginSession.select(LoginSession.id)
            .where(LoginSession.user == user_id, LoginSession.ended_at.is_null())
            .order_by(LoginSession.last_active_at.desc(), LoginSession.id.desc())
            .offset(keep))
    for session in list(over):
        end(session.id, user_id, SESSION_LIMIT, now)


def end(session_id: int, user_id: int, reason: str, now: float, ip_address: str = "",
        detail: str = "", actor: str = "") -> None:
    """End a session once (in the caller's transaction): an already-ended one keeps its first
    reason and gets no new event. ``actor``: the public id of the session that signed it
    out, if one did."""
    updated = (LoginSession.update(ended_at=now, end_reason=reason,
                                   end_ip_address=ip_address[:64], ended_by=actor[:32])
               .where(LoginSession.id == session_id, LoginSession.ended_at.is_null())
               .execute())
    if updated:
        liveness.announce(session_id=session_id, now=now)
        audit.record(reason, user=user_id, session=session_id, ip=ip_address, now=now,
                     detail=detail)


def _ended_by(session: LoginSession, actor: str) -> str:
    """The event detail of a revocation: which session ended, and from which one."""
    return f"session {session.public_id} ended by session {actor}" if actor else ""


def revoke(session_public_id: str, *, user_id: int, reason: str, now: float,
           ip_address: str = "", actor: str = "") -> None:
    """End one of ``user_id``'s live sessions, from the session ``actor`` (a public id).
    Someone else's session, or a value that is no public id at all, is SessionNotFound."""
    if not tokens.is_public_id(session_public_id):
        raise SessionNotFound()
    session = LoginSession.get_or_none(LoginSession.public_id == session_public_id,
                                       LoginSession.user == user_id,
                                       LoginSession.ended_at.is_null())
    if session is None:
        raise SessionNotFound()
    with write_transaction():
        end(session.id, user_id, reason, now, ip_address, _ended_by(session, actor), actor)


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
            end(session.id, user_id, reason, now, ip_address)
    return len(ended)


class Counted(NamedTuple):
    """How many sessions, on how many devices (``devices.key``)."""

    sessions: int
    devices: int


def revoke_all(user_id: int, *, reason: str, now: float, keep: int | None = None,
               ip_address: str = "", actor: str = "") -> Counted:
    """End every live session of the user except ``keep``; return how many, on how many
    devices. A credential change: the person's epoch moves on (``keep`` moves with it), and
    the codes their consent gave apps and no app has redeemed yet are deleted."""
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
        liveness.announce(user_id=user_id, now=now)
        AuthorizationCode.delete().where(AuthorizationCode.user_id == user_id,
                                         AuthorizationCode.used_at.is_null()).execute()
        ended = list(query)
        for session in ended:
            end(session.id, user_id, reason, now, ip_address, _ended_by(session, actor), actor)
    return Counted(len(ended), len({devices.key(session) for session in ended}))


def rekey(principal: Principal, *, keys: tokens.Keys, policy: Policy,
          now: float) -> Issued | None:
    """Give the caller's session a fresh random value that no copy of the old one leads to,
    and refuse every access token issued before it (after a password change and "sign out all
    other sessions", so that a thief holding a copy of this browser's cookies is cut off too).
    A replaced value presented within the grace window is refused without alarm; after it,
    it is reuse and ends the session.

    A session bound to a key keeps its value instead (``rules.rekey_keeps_value``): every
    access token issued so far is refused, nothing is issued (None), and only a proof of the
    key renews it. Whoever asked, with the owner's cookies or a copy of them, leaves without
    a live credential; the owner's browser renews at its next refresh."""
    handle = tokens.new_handle()
    digest = tokens.token_hash(tokens.refresh_token(keys, handle))
    with write_transaction():
        session = locked(LoginSession.select()
                         .where(LoginSession.id == principal.session_id)).get()
        if keeps_value := rekey_keeps_value(session.key_thumbprint):
            # The value stays (its next rotation is the key's); the tokens issued with it go.
            session.rekey_generation = session.generation + 1
        else:
            RefreshToken.create(token_hash=digest, session=session,
                                generation=session.generation + 1, issued_at=now)
            session.generation += 1
            session.current_hash = digest
            session.rotated_at = session.rekeyed_at = now
            session.rekey_generation = session.generation  # older access tokens: refused
            session.successor_seen = False
        session.save()
        liveness.announce(session_id=session.id, now=now)
    if keeps_value:
        return None
    return issue(keys, policy, public_id=session.public_id,
                 absolute_expires_at=session.absolute_expires_at,
                 user_public_id=principal.user_public_id, handle=handle,
                 generation=session.generation, now=now, client_id=principal.client_id,
                 key_thumbprint=session.key_thumbprint if principal.client_id else "")


def bind_key(session_id: int, thumbprint: str, *, now: float, ip_address: str = "") -> None:
    """Bind the session to the key whose RFC 7638 thumbprint is ``thumbprint`` (once: a bound
    session keeps its key)."""
    with write_transaction():
        bound = (LoginSession.update(key_thumbprint=thumbprint)
                 .where(LoginSession.id == session_id, LoginSession.key_thumbprint == "")
                 .execute())
        if bound:
            liveness.announce(session_id=session_id, now=now)
            user_id = LoginSession.select(LoginSession.user).where(
                LoginSession.id == session_id).scalar()
            audit.record(audit.KEY_BOUND, user=user_id, session=session_id, ip=ip_address,
                         now=now)


def proven_again(session_id: int, *, method: Method, now: float, ip_address: str = "") -> None:
    """The person has just proved who they are again in this session, by ``method``: the
    re-authentication window starts anew (an event on its timeline)."""
    with write_transaction():
        LoginSession.update(authenticated_at=now).where(LoginSession.id == session_id).execute()
        liveness.announce(session_id=session_id, now=now)
        user_id = LoginSession.select(LoginSession.user).where(
            LoginSession.id == session_id).scalar()
        audit.record(audit.REAUTHENTICATED, user=user_id, session=session_id, ip=ip_address,
                     now=now, detail=method)


def set_email(user_id: int, email: str, *, now: float) -> None:
    """The person's address is now ``email`` (confirmed now), in the caller's transaction: it
    is part of what each worker remembers of their sessions. IntegrityError when another
    account has it."""
    User.update(email=email, email_verified_at=now).where(User.id == user_id).execute()
    liveness.announce(user_id=user_id, now=now)


def age(session_id: int, *, now: float, last_active_at: float | None = None,
        absolute_expires_at: float | None = None, rotated_at: float | None = None) -> None:
    """Set the given moments of a session (each one earlier than it was) and announce it:
    the rules then find it idle, expired, or its last rotation long past, exactly as they
    would once that much time had gone by. Ends nothing itself."""
    moments = {"last_active_at": last_active_at, "absolute_expires_at": absolute_expires_at,
               "rotated_at": rotated_at}
    with write_transaction():
        LoginSession.update(**{k: v for k, v in moments.items() if v is not None}).where(
            LoginSession.id == session_id).execute()
        liveness.announce(session_id=session_id, now=now)


def prune(*, policy: Policy, now: float, keep_ended_for: int = KEEP_ENDED) -> int:
    """Delete sessions (and their tokens) that ended or expired more than ``keep_ended_for``
    seconds ago: recently ended ones stay, so the sessions page can say why they ended."""
    cutoff = now - keep_ended_for
    stale = LoginSession.select(LoginSession.id).where(
        (LoginSession.ended_at < cutoff)
        | (LoginSession.absolute_expires_at < cutoff)
        | (LoginSession.last_active_at < policy.live_since(cutoff)))
    with write_transaction():
        ids = [row.id for row in stale]
        RefreshToken.delete().where(RefreshToken.session.in_(ids)).execute()
        removed: int = LoginSession.delete().where(LoginSession.id.in_(ids)).execute()
        liveness.prune(now=now)
    return removed
