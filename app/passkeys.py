"""Passkeys (WebAuthn, through the ``webauthn`` package): adding one, signing in or proving it
again with one, naming and removing them.

Every ceremony starts with ``begin``: a random challenge stored here, reached through a random
handle that the browser keeps (in Flask's signed cookie), answered within ``CHALLENGE_TTL``
and at most once (``_take`` deletes it before anything is verified). A registration or a
re-authentication is also bound to the account and session that asked. Credentials are
discoverable and user verification is required; the sign counter and backup flags are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import peewee
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app import audit, throttle, tokens
from app.config import CHALLENGE_TTL
from app.db import write_transaction
from app.limits import Throttles
from app.models import Passkey, User, WebAuthnChallenge

REGISTER, SIGN_IN, REAUTH = "register", "sign_in", "reauth"
NAME_MAX = 40
MAX_CREDENTIAL = 16_384  # characters of a browser's JSON answer read at all


class PasskeyRefused(Exception):
    """The browser's answer was not accepted (the message says why, for the log only)."""


@dataclass(frozen=True)
class RelyingParty:
    """Who passkeys are made for: the public URL's host and origin (never a request's Host)."""

    id: str
    origin: str
    name: str = "Gatehouse"

    @classmethod
    def of(cls, public_url: str) -> RelyingParty | None:
        parts = urlsplit(public_url)
        if not parts.hostname:
            return None
        return cls(id=parts.hostname, origin=f"{parts.scheme}://{parts.netloc}")


def begin(purpose: str, rp: RelyingParty, *, now: float, user: User | None = None,
          session_id: int | None = None) -> tuple[str, str]:
    """A new challenge for ``purpose``; the handle the browser keeps, and the options for
    ``navigator.credentials`` as JSON."""
    handle = tokens.new_handle()
    if purpose == REGISTER:
        assert user is not None
        options: Any = generate_registration_options(
            rp_id=rp.id, rp_name=rp.name, user_name=user.email, user_display_name=user.email,
            user_id=user.public_id.encode(), timeout=CHALLENGE_TTL * 1000,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED, require_resident_key=True,
                user_verification=UserVerificationRequirement.REQUIRED),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
                                 for p in Passkey.select().where(Passkey.user == user.id)])
    else:  # discoverable: no list of credentials, the authenticator offers its own
        options = generate_authentication_options(
            rp_id=rp.id, timeout=CHALLENGE_TTL * 1000,
            user_verification=UserVerificationRequirement.REQUIRED)
    prune(now)  # anyone may ask for challenges: the table holds only the unexpired ones
    WebAuthnChallenge.create(handle_hash=tokens.token_hash(handle), purpose=purpose,
                             challenge=bytes_to_base64url(options.challenge),
                             user=user.id if user else None, session=session_id,
                             expires_at=now + CHALLENGE_TTL)
    return handle, options_to_json(options)


def _take(handle: str, purpose: str, *, now: float, user_id: int | None = None,
          session_id: int | None = None) -> bytes:
    """The challenge behind ``handle``, deleted so that it never serves twice."""
    row = WebAuthnChallenge.get_or_none(WebAuthnChallenge.handle_hash == tokens.token_hash(handle))
    if row is None:
        raise PasskeyRefused("no such challenge (used, expired or another browser's)")
    deleted = WebAuthnChallenge.delete().where(WebAuthnChallenge.id == row.id).execute()
    if not deleted:
        raise PasskeyRefused("the challenge was used meanwhile")
    if (row.purpose != purpose or row.expires_at <= now or row.user_id != user_id
            or row.session_id != session_id):
        raise PasskeyRefused("the challenge is expired or was issued for something else")
    return base64url_to_bytes(row.challenge)


def _parsed(credential: str) -> dict[str, Any]:
    if len(credential) > MAX_CREDENTIAL:
        raise PasskeyRefused("the answer is too large")
    try:
        value = json.loads(credential)
    except (ValueError, RecursionError):
        raise PasskeyRefused("the answer is not JSON") from None
    if not isinstance(value, dict):
        raise PasskeyRefused("the answer is not an object")
    return value


def register(handle: str, credential: str, rp: RelyingParty, *, user_id: int, session_id: int,
             name: str, now: float, ip: str = "") -> Passkey:
    """Store the passkey the browser just made, once its attestation checks out."""
    challenge = _take(handle, REGISTER, now=now, user_id=user_id, session_id=session_id)
    try:
        verified = verify_registration_response(
            credential=_parsed(credential), expected_challenge=challenge,
            expected_rp_id=rp.id, expected_origin=rp.origin, require_user_verification=True)
    except Exception as exc:  # noqa: BLE001  (any malformed answer is a refusal, never a 500)
        raise PasskeyRefused(f"registration: {type(exc).__name__}: {exc}") from None
    name = " ".join(name.split())[:NAME_MAX] or "Passkey"
    try:
        with write_transaction():
            passkey = Passkey.create(
                public_id=tokens.new_public_id(), user=user_id,
                credential_id=bytes_to_base64url(verified.credential_id),
                public_key=bytes_to_base64url(verified.credential_public_key),
                sign_count=verified.sign_count,
                backup_eligible=verified.credential_device_type
                == CredentialDeviceType.MULTI_DEVICE,
                backed_up=verified.credential_backed_up, aaguid=verified.aaguid, name=name,
                created_at=now)
            audit.record(audit.PASSKEY_ADDED, user=user_id, session=session_id, ip=ip, now=now,
                         detail=name)
    except peewee.IntegrityError:
        raise PasskeyRefused("that credential is already registered") from None
    return passkey


def authenticate(handle: str, credential: str, rp: RelyingParty, *, purpose: str,
                 limits: Throttles, now: float, ip: str = "", user_id: int | None = None,
                 session_id: int | None = None) -> Passkey:
    """The passkey that answered the challenge behind ``handle`` (for a re-authentication, one
    of ``user_id``'s). Refusals count against the address's sign-in limit (Throttled beyond
    it) and are recorded."""
    with throttle.attempt(limits.for_address(ip), now) as attempt:
        try:
            passkey = _verified(handle, credential, rp, purpose=purpose, now=now,
                                user_id=user_id, session_id=session_id)
        except PasskeyRefused as refused:
            reason = str(refused)[:200]
        else:
            attempt.succeeded(clear=[])
            return passkey
    audit.record(audit.PASSKEY_FAILED, user=user_id, session=session_id, ip=ip, now=now,
                 detail=reason)
    raise PasskeyRefused(reason)


def _verified(handle: str, credential: str, rp: RelyingParty, *, purpose: str, now: float,
              user_id: int | None, session_id: int | None) -> Passkey:
    challenge = _take(handle, purpose, now=now, user_id=user_id, session_id=session_id)
    answer = _parsed(credential)
    passkey = Passkey.get_or_none(Passkey.credential_id == str(answer.get("rawId", "")))
    if passkey is None or (user_id is not None and passkey.user_id != user_id):
        raise PasskeyRefused("unknown or removed credential")
    try:
        verified = verify_authentication_response(
            credential=answer, expected_challenge=challenge, expected_rp_id=rp.id,
            expected_origin=rp.origin, credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count, require_user_verification=True)
        handle_given = answer["response"].get("userHandle")
        owner = base64url_to_bytes(handle_given) if handle_given else None
    except Exception as exc:  # noqa: BLE001  (any malformed answer is a refusal, never a 500)
        raise PasskeyRefused(f"assertion: {type(exc).__name__}: {exc}") from None
    if owner is not None and owner != User.get_by_id(passkey.user_id).public_id.encode():
        raise PasskeyRefused("the user handle is not the credential's")
    # Guarded by the count read: of two answers verified at once, one is refused.
    updated = Passkey.update(sign_count=verified.new_sign_count, last_used_at=now,
                             backed_up=verified.credential_backed_up).where(
        Passkey.id == passkey.id, Passkey.sign_count == passkey.sign_count).execute()
    if not updated:
        raise PasskeyRefused("the credential was used meanwhile")
    return passkey


def of_user(user_id: int) -> list[Passkey]:
    return list(Passkey.select().where(Passkey.user == user_id).order_by(Passkey.created_at))


def find(user_id: int, public_id: str) -> Passkey | None:
    return Passkey.get_or_none(Passkey.user == user_id, Passkey.public_id == public_id)


def rename(passkey: Passkey, name: str, *, now: float, ip: str = "") -> None:
    name = " ".join(name.split())[:NAME_MAX] or "Passkey"
    with write_transaction():
        Passkey.update(name=name).where(Passkey.id == passkey.id).execute()
        audit.record(audit.PASSKEY_RENAMED, user=passkey.user_id, ip=ip, now=now, detail=name)


def remove(passkey: Passkey, *, now: float, session_id: int | None = None,
           ip: str = "") -> None:
    with write_transaction():
        if Passkey.delete().where(Passkey.id == passkey.id).execute():
            audit.record(audit.PASSKEY_REMOVED, user=passkey.user_id, session=session_id,
                         ip=ip, now=now, detail=passkey.name)


def prune(now: float) -> int:
    removed: int = WebAuthnChallenge.delete().where(
        WebAuthnChallenge.expires_at < now).execute()
    return removed
