"""Apps and what they are granted: registered clients, authorization codes, and the token
endpoint's grants. An app's session is a session like any other: it starts with
``store.start`` and its refresh is ``use.rotate``, the browser's own rotation (grace, lost
responses, reuse), with the session value as the app's refresh token.
"""

from __future__ import annotations

import json
import secrets
from typing import NamedTuple

from app import tokens
from app.db import write_transaction
from app.dpop import Proof
from app.models import AppClient, AuthorizationCode, LoginSession, RefreshToken, User
from app.oauth_rules import redirect_matches, registrable, verifier_matches
from app.sessions import queries, store, use
from app.sessions.rules import (
    REUSE_DETECTED,
    REVOKED,
    SIGNED_OUT,
    Issued,
    KeyProofMissing,
    Policy,
    SessionError,
)
from app.sessions.state import CarriedProof, Method, Principal

CODE_TTL = 60  # seconds an authorization code works
DPOP_MODES = ("", "optional", "required")


class Granted(NamedTuple):
    issued: Issued
    bound: bool  # to a key, by DPoP: ``token_type`` DPoP


class OAuthError(Exception):
    """An RFC 6749 5.2 error: ``error`` is its code, the message its description."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def register(name: str, redirect_uris: list[str], *, dpop: str = "", now: float) -> str:
    """Register an app; return its new client_id. ValueError says what is wrong."""
    if not name.strip() or len(name) > 80 or not name.isprintable():
        raise ValueError("the name must be 1 to 80 printable characters")
    if not redirect_uris:
        raise ValueError("at least one --redirect-uri is needed")
    for uri in redirect_uris:
        if (why := registrable(uri)) is not None:
            raise ValueError(f"{uri!r}: {why}")
    if dpop not in DPOP_MODES:
        raise ValueError("--dpop is 'required' or 'optional'")
    client_id = secrets.token_urlsafe(16)
    AppClient.create(client_id=client_id, name=name.strip(), dpop=dpop, created_at=now,
                     redirect_uris=json.dumps(redirect_uris))
    return client_id


def find(client_id: str) -> AppClient | None:
    if not client_id or len(client_id) > 32:
        return None
    found: AppClient | None = AppClient.get_or_none(AppClient.client_id == client_id)
    return found


def uris_of(client: AppClient) -> list[str]:
    found: list[str] = json.loads(client.redirect_uris)
    return found


def redirect_allowed(client: AppClient, uri: str) -> bool:
    return redirect_matches(uris_of(client), uri)


def remove(client_id: str, *, now: float) -> int:
    """Remove an app and end every session it has; return how many ended."""
    with write_transaction():
        live = list(LoginSession.select(LoginSession.id, LoginSession.user).where(
            LoginSession.client_id == client_id, LoginSession.ended_at.is_null()))
        for session in live:
            store.end(session.id, session.user_id, REVOKED, now, detail="app removed")
        AuthorizationCode.delete().where(AuthorizationCode.client_id == client_id).execute()
        AppClient.delete().where(AppClient.client_id == client_id).execute()
    return len(live)


def new_code(client: AppClient, redirect_uri: str, challenge: str, consenting: Principal,
             now: float) -> str:
    """A code for the consent given in the session of ``consenting``: only its hash is
    stored, with that session, its last proof and its credential epoch."""
    code = secrets.token_urlsafe(32)
    epoch = LoginSession.select(LoginSession.credential_epoch).where(
        LoginSession.id == consenting.session_id).scalar()
    AuthorizationCode.create(code_hash=tokens.token_hash(code), client_id=client.client_id,
                             redirect_uri=redirect_uri, challenge=challenge,
                             user_id=consenting.user_id, created_at=now,
                             expires_at=now + CODE_TTL,
                             consent_session_id=consenting.session_id,
                             proven_at=consenting.proven_at, credential_epoch=epoch)
    return code


def _key_of(client: AppClient, proof: Proof | None) -> str:
    """The key an app's new session is bound to: its proof's, for an app that uses DPoP."""
    if client.dpop == "required" and proof is None:
        raise OAuthError("invalid_dpop_proof", "This app must send a DPoP proof.")
    return proof.key_thumbprint if proof is not None and client.dpop else ""


def redeem(code: str, *, client: AppClient, redirect_uri: str, verifier: str,
           keys: tokens.Keys, policy: Policy, now: float, ip_address: str,
           user_agent: str, proof: Proof | None = None) -> Granted:
    """Exchange a code for the app's first tokens: once, within CODE_TTL, by its client, with
    its redirect URI and the verifier of its challenge, for an account no administrator has
    locked, while the session that consented is live and its person's credentials have not
    changed since; bound to the key of ``proof`` (DPoP) for an app registered with it. The
    app's session starts with the consenting session's last proof: consent proves nothing
    anew. A second use of a code ends the session its first use started (RFC 6749 4.1.2:
    the code was stolen)."""
    key = _key_of(client, proof)
    digest = tokens.token_hash(code)
    row = AuthorizationCode.get_or_none(AuthorizationCode.code_hash == digest)
    if row is None:
        raise OAuthError("invalid_grant", "Unknown authorization code.")
    claimed = (AuthorizationCode.update(used_at=now)
               .where(AuthorizationCode.code_hash == digest,
                      AuthorizationCode.used_at.is_null()).execute())
    if not claimed:
        if row.session_id is not None:
            with write_transaction():
                store.end(row.session_id, row.user_id, REUSE_DETECTED, now, ip_address,
                          detail="authorization code used twice")
        raise OAuthError("invalid_grant", "This authorization code was already used.")
    if now >= row.expires_at:
        raise OAuthError("invalid_grant", "This authorization code has expired.")
    if row.client_id != client.client_id or row.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", "The code was issued to another client or URI.")
    if not verifier_matches(verifier, row.challenge):
        raise OAuthError("invalid_grant", "The code_verifier does not match the challenge.")
    user = User.get_or_none(User.id == row.user_id)
    if user is None:
        raise OAuthError("invalid_grant", "The account no longer exists.")
    if user.locked_at is not None:
        raise OAuthError("invalid_grant", "The account is locked.")
    if (row.consent_session_id is None or row.credential_epoch != user.credential_epoch
            or not queries.is_live(user.id, row.consent_session_id, policy=policy, now=now)):
        raise OAuthError("invalid_grant", "The session that consented has ended.")
    # With the code's epoch: a credential change from now on leaves this session not live.
    issued = store.start(user, keys=keys, policy=policy, now=now, user_agent=user_agent,
                         ip_address=ip_address, method=Method.APP,
                         client_id=client.client_id, app_name=client.name,
                         key_thumbprint=key,
                         carried=CarriedProof(row.proven_at, row.credential_epoch))
    session_id = LoginSession.select(LoginSession.id).where(
        LoginSession.public_id == issued.session_public_id).scalar()
    AuthorizationCode.update(session_id=session_id).where(
        AuthorizationCode.code_hash == digest).execute()
    return Granted(issued, bool(key))


def _session_of(handle: str, keys: tokens.Keys) -> LoginSession | None:
    """The session any value of which ``handle`` is (current or superseded), or None."""
    if not handle or len(handle) > 128:
        return None
    found: LoginSession | None = (
        LoginSession.select(LoginSession.id, LoginSession.user, LoginSession.client_id,
                            LoginSession.key_thumbprint)
        .join(RefreshToken, on=RefreshToken.session == LoginSession.id)
        .where(RefreshToken.token_hash.in_(keys.presented_hashes(handle))).first())
    return found


def refresh(handle: str, *, client: AppClient, keys: tokens.Keys, policy: Policy, now: float,
            ip_address: str, user_agent: str, proof: Proof | None = None) -> Granted:
    """The refresh_token grant: the session core's rotation of the app's session value, for
    an account no administrator has locked. A session bound to a key rotates only with a
    proof from it (``use.rotate``'s rule: refused and recorded, nothing ended)."""
    session = _session_of(handle, keys)
    if session is None or session.client_id != client.client_id:
        raise OAuthError("invalid_grant", "Unknown refresh token.")
    if User.select(User.locked_at).where(User.id == session.user_id).scalar() is not None:
        raise OAuthError("invalid_grant", "The account is locked.")
    try:
        issued, _ = use.rotate(handle, keys=keys, policy=policy, now=now,
                               ip_address=ip_address, user_agent=user_agent,
                               proven_key=proof.key_thumbprint if proof is not None else "",
                               client_id=client.client_id)
    except KeyProofMissing:
        raise OAuthError("invalid_grant" if proof is not None else "invalid_dpop_proof",
                         "This refresh token works only with a DPoP proof from its key."
                         ) from None
    except SessionError as error:
        raise OAuthError("invalid_grant", _refused(error)) from None
    return Granted(issued, bool(session.key_thumbprint))


def _refused(error: SessionError) -> str:
    if error.reason == REUSE_DETECTED:
        return "This refresh token was used twice; the session has ended."
    if error.reason:
        return f"The session has ended ({error.reason})."
    return "This refresh token cannot be used."


def revoke(handle: str, *, client: AppClient, keys: tokens.Keys, now: float,
           ip_address: str) -> None:
    """RFC 7009: end the session of ``handle`` if it is this app's; nothing otherwise."""
    session = _session_of(handle, keys)
    if session is None or session.client_id != client.client_id:
        return
    with write_transaction():
        store.end(session.id, session.user_id, SIGNED_OUT, now, ip_address,
                  detail="signed out by the app")


def prune(now: float) -> int:
    """Delete authorization codes that expired; return how many."""
    deleted: int = AuthorizationCode.delete().where(
        AuthorizationCode.expires_at < now - CODE_TTL).execute()
    return deleted
