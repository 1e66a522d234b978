"""Device Bound Session Credentials (W3C DBSC): the browser's proofs and the headers around them.

Pure: the checks a proof of possession must pass, the RFC 7638 thumbprint of its key, and the
header values and session configuration a DBSC browser reads. The header names are the ones
Chromium reads today (``Secure-Session-*``; the older ``Sec-Session-*`` drafts are ignored by
it). Every input here is hostile until it has passed ``read_proof``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

# thumbprint: one RFC 7638 implementation for every key the server hashes (this module's
# callers and tests name it here too).
from app.signing import PRIVATE_MEMBERS, REQUIRED_MEMBERS, thumbprint, unb64url

REGISTER_PATH = "/dbsc/register"
REFRESH_PATH = "/dbsc/refresh"
# Response headers: the offer on a sign-in, the challenge of a refresh.
REGISTRATION_HEADER = "Secure-Session-Registration"
CHALLENGE_HEADER = "Secure-Session-Challenge"
# Request headers: the browser's proof, and which of its sessions it refreshes.
PROOF_HEADER = "Secure-Session-Response"
SESSION_ID_HEADER = "Sec-Secure-Session-Id"

PROOF_TYPE = "dbsc+jwt"
ALGORITHMS = ("ES256", "RS256")  # what we offer, in order of preference
MAX_PROOF_LENGTH = 8192  # a proof with an RSA-4096 key in its header is about 1.5 KB
MIN_RSA_BITS = 2048


class InvalidProof(Exception):
    """The proof is not one we accept; the message says why (for the log, never for people)."""


@dataclass(frozen=True)
class Proof:
    """A proof whose signature verified: the challenge it answers, and the key that signed."""

    challenge: str
    thumbprint: str
    jwk: dict[str, str]  # the public members only


def public_jwk(jwk: object, algorithm: str) -> dict[str, str]:
    """The public members of ``jwk``, if it is a public key that fits ``algorithm``: a P-256
    EC key for ES256, an RSA key of at least 2048 bits for RS256. A key with any private
    member is refused outright: a browser never sends one, and it is not ours to hold."""
    if not isinstance(jwk, Mapping):
        raise InvalidProof("the jwk is not an object")
    if PRIVATE_MEMBERS & set(jwk):
        raise InvalidProof("the jwk has a private part")
    kty = {"ES256": "EC", "RS256": "RSA"}[algorithm]
    if jwk.get("kty") != kty:
        raise InvalidProof(f"a {jwk.get('kty')!r} key cannot sign {algorithm}")
    members: dict[str, str] = {}
    for name in REQUIRED_MEMBERS[kty]:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidProof(f"the jwk lacks {name}")
        members[name] = value
    if kty == "EC" and members["crv"] != "P-256":
        raise InvalidProof("ES256 needs a P-256 key")
    if kty == "RSA" and len(_unbase64(members["n"]).lstrip(b"\0")) * 8 < MIN_RSA_BITS:
        raise InvalidProof("the RSA key is too short")
    return members


def read_proof(token: str, stored_jwk: Mapping[str, str] | None = None) -> Proof:
    """Verify a DBSC proof JWT and return what it proves.

    At registration (``stored_jwk`` None) the key is the ``jwk`` of the proof's own header:
    the proof shows the browser holds its private half. At a refresh the key is the one stored
    at registration, whatever the header says. Either way: ``typ`` must be ``dbsc+jwt``,
    ``alg`` ES256 or RS256 (never ``none``, never an HMAC), the signature must verify with that
    key under that algorithm, and ``jti`` (the challenge) must be a string.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_PROOF_LENGTH:
        raise InvalidProof("no proof, or one too long")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise InvalidProof(f"unreadable header: {error}") from None
    if header.get("typ") != PROOF_TYPE:
        raise InvalidProof(f"typ is {header.get('typ')!r}")
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise InvalidProof(f"alg {algorithm!r} is not accepted")
    jwk = public_jwk(header.get("jwk") if stored_jwk is None else stored_jwk, algorithm)
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithm).key
        claims = jwt.decode(token, key, algorithms=[algorithm],
                            options={"require": ["jti"], "verify_aud": False})
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise InvalidProof(f"the signature does not verify: {error}") from None
    challenge = claims.get("jti")
    if not isinstance(challenge, str) or not challenge:
        raise InvalidProof("jti is not a challenge")
    return Proof(challenge, thumbprint(jwk), jwk)


def _unbase64(value: str) -> bytes:
    try:
        return unb64url(value)
    except ValueError:
        raise InvalidProof("a jwk member is not base64url") from None


def registration_offer(challenge: str) -> str:
    """The ``Secure-Session-Registration`` value: the algorithms we take, where to register,
    and the challenge to sign."""
    return f'({" ".join(ALGORITHMS)});path="{REGISTER_PATH}";challenge="{challenge}"'


def challenge_header(challenge: str, session_id: str) -> str:
    """The ``Secure-Session-Challenge`` value of a refresh answered 403."""
    return f'"{challenge}";id="{session_id}"'


def cookie_attributes(attributes: Mapping[str, Any]) -> str:
    """A cookie's attributes as the ``Set-Cookie`` line states them (werkzeug's keywords in,
    ``Path=/; Secure; HttpOnly; SameSite=Lax`` out): the session configuration must name them
    exactly as the cookie is set, or the browser keeps refreshing."""
    parts = []
    if attributes.get("domain"):
        parts.append(f"Domain={attributes['domain']}")
    parts.append(f"Path={attributes.get('path') or '/'}")
    if attributes.get("secure"):
        parts.append("Secure")
    if attributes.get("httponly"):
        parts.append("HttpOnly")
    if attributes.get("samesite"):
        parts.append(f"SameSite={attributes['samesite']}")
    return "; ".join(parts)


def session_config(session_id: str, *, origin: str, cookie: str,
                   attributes: str) -> dict[str, Any]:
    """The session configuration a DBSC browser keeps: which cookie is bound (``cookie``, set
    with ``attributes``), where to refresh it, and for which origin."""
    return {
        "session_identifier": session_id,
        "refresh_url": REFRESH_PATH,
        "scope": {"origin": origin, "include_site": False},
        "credentials": [{"type": "cookie", "name": cookie, "attributes": attributes}],
    }


def ended_config(session_id: str) -> dict[str, Any]:
    """The answer to a refresh of a session that ended: the browser stops refreshing it."""
    return {"session_identifier": session_id, "continue": False}
