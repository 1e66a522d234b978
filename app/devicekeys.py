"""Device-bound sessions (DBSC): the challenges a browser's proofs answer, and the keys they bind.

A challenge belongs to one session, is unpredictable (256 bits, derived from the secret and its
number), stored by hash, answered at most once (taking it deletes it, in one statement: of two
proofs racing with the same challenge, one wins) and only before it expires; no unexpired one is
ever dropped for a newer. Binding goes through ``store.bind_key``, the one writer of
``key_thumbprint``; the public key itself is kept here, by thumbprint, for refreshes to verify
with.
"""

from __future__ import annotations

import json

from app import keyproofs, tokens
from app.config import KEY_CHALLENGE_TTL, KEY_CHALLENGES_KEPT
from app.db import fetch_one, locked, write_transaction
from app.models import KeyChallenge, LoginSession, SessionKey
from app.sessions import store
from app.sessions.state import COLUMNS, SessionState, from_row

_BY_TOKEN_SQL = (f"SELECT {COLUMNS} FROM refresh_token t JOIN login_session s "
                 'ON s.id = t.session_id JOIN "user" u ON u.id = s.user_id '
                 "WHERE t.token_hash = {p}")


def session_of(keys: tokens.Keys, handle: str) -> SessionState | None:
    """The session whose value (any generation of it) ``handle`` is, read as it is now: a
    value issued under the current SECRET_KEY or one of its fallbacks, as rotation finds it."""
    if not handle:
        return None
    for digest in keys.presented_hashes(handle):
        row = fetch_one(_BY_TOKEN_SQL, digest)
        if row is not None:
            return from_row(row)
    return None


def new_challenge(keys: tokens.Keys, session_id: int, *, now: float) -> str:
    """A challenge for the session to sign: a fresh one, or, once KEY_CHALLENGES_KEPT
    unanswered ones are waiting, the newest of them again. Expired ones are dropped, and no
    unexpired one ever is: whoever holds a copy of the cookie may ask for challenges, and
    asking must neither void the one the owner's browser is signing nor grow without bound."""
    with write_transaction():
        # Asks for one session take turns, so that the bound holds (SQLite: its write lock).
        locked(LoginSession.select(LoginSession.id).where(LoginSession.id == session_id),
               "FOR NO KEY UPDATE").execute()
        KeyChallenge.delete().where(KeyChallenge.session == session_id,
                                    KeyChallenge.expires_at <= now).execute()
        waiting = list(KeyChallenge.select(KeyChallenge.id)
                       .where(KeyChallenge.session == session_id)
                       .order_by(KeyChallenge.id.desc()).limit(KEY_CHALLENGES_KEPT))
        if len(waiting) >= KEY_CHALLENGES_KEPT:
            return tokens.key_challenge(keys, session_id, waiting[0].id)
        row = KeyChallenge.create(session=session_id, expires_at=now + KEY_CHALLENGE_TTL,
                                  challenge_hash=tokens.token_hash(tokens.new_handle()))
        challenge = tokens.key_challenge(keys, session_id, row.id)
        KeyChallenge.update(challenge_hash=tokens.token_hash(challenge)).where(
            KeyChallenge.id == row.id).execute()
    return challenge


def new_challenge_for(keys: tokens.Keys, session_public_id: str, *, now: float) -> str:
    """``new_challenge`` for a session known by its public id (one just started)."""
    session_id = LoginSession.select(LoginSession.id).where(
        LoginSession.public_id == session_public_id).scalar()
    return new_challenge(keys, session_id, now=now)


def take_challenge(session_id: int, challenge: str, *, now: float) -> bool:
    """Whether ``challenge`` was issued to this session, unanswered and unexpired; it is
    answered now, so never again."""
    taken: int = KeyChallenge.delete().where(
        KeyChallenge.challenge_hash == tokens.token_hash(challenge),
        KeyChallenge.session == session_id, KeyChallenge.expires_at > now).execute()
    return taken == 1


def bind(session_id: int, proof: keyproofs.Proof, *, now: float, ip_address: str) -> bool:
    """Keep the proof's public key and bind the session to it; whether the session is now
    bound to this key (False: it already was to another one, which stays, and the new key is
    not kept)."""
    if not may_bind(session_id, proof.thumbprint):
        return False
    with write_transaction():
        (SessionKey.insert(session=session_id, thumbprint=proof.thumbprint,
                           jwk=json.dumps(proof.jwk, sort_keys=True), created_at=now)
         .on_conflict_ignore().execute())
    store.bind_key(session_id, proof.thumbprint, now=now, ip_address=ip_address)
    return tokens.hashes_equal(_bound_to(session_id), proof.thumbprint)


def may_bind(session_id: int, thumbprint: str) -> bool:
    """Whether the session is unbound, or bound to this very key."""
    return _bound_to(session_id) in ("", thumbprint)


def _bound_to(session_id: int) -> str:
    thumbprint = LoginSession.select(LoginSession.key_thumbprint).where(
        LoginSession.id == session_id).scalar()
    return str(thumbprint or "")


def stored_key(session_id: int, thumbprint: str) -> dict[str, str] | None:
    """The public key the session registered with that thumbprint, if it did."""
    jwk = SessionKey.select(SessionKey.jwk).where(SessionKey.session == session_id,
                                                  SessionKey.thumbprint == thumbprint).scalar()
    if not jwk:
        return None
    found: dict[str, str] = json.loads(jwk)
    return found


def prune(*, now: float) -> int:
    """Delete every expired challenge (those of sign-ins whose browser never registered)."""
    removed: int = KeyChallenge.delete().where(KeyChallenge.expires_at <= now).execute()
    return removed
