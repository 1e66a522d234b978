"""DPoP proofs (RFC 9449), checked the RFC's way (section 4.3) with PyJWT and the key in the
proof's own ``jwk`` header. Pure: the caller passes ``now`` and remembers each ``jti``.

What a proof must be: a JWT with ``typ`` ``dpop+jwt``, an asymmetric ``alg`` this server
accepts, a public ``jwk`` (no private member), a valid signature by it, ``htm`` and ``htu``
naming this request's method and URL (without query and fragment), ``iat`` within
``PROOF_WINDOW`` seconds of now, a ``jti``; and, beside an access token, ``ath``: the hash of
that token. The key's RFC 7638 thumbprint is what a session is bound to.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from app.signing import PRIVATE_MEMBERS, b64url, thumbprint

PROOF_WINDOW = 60  # seconds either side of now a proof's iat may be
ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "EdDSA")
MAX_PROOF = 4096
MAX_JTI = 256


class InvalidProof(Exception):
    """The DPoP proof is missing, malformed, or not for this request."""


@dataclass(frozen=True)
class Proof:
    key_thumbprint: str  # RFC 7638, of the proof's jwk
    jti: str
    issued_at: int


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url(SHA-256(the access token's ASCII))."""
    return b64url(hashlib.sha256(access_token.encode()).digest())


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()


def verify(proof: str, *, method: str, url: str, now: float,
           access_token: str | None = None) -> Proof:
    """The checked proof of a request to ``method`` ``url``; InvalidProof otherwise."""
    if not proof or len(proof) > MAX_PROOF or proof.count(".") != 2:
        raise InvalidProof("absent or malformed")
    try:
        header = jwt.get_unverified_header(proof)
        _check_header(header)
        key = jwt.PyJWK(header["jwk"], header["alg"]).key
        claims: dict[str, Any] = jwt.decode(
            proof, key, algorithms=[header["alg"]],
            options={"require": ["iat", "jti", "htm", "htu"], "verify_exp": False,
                     "verify_iat": False, "verify_nbf": False, "verify_aud": False})
    except InvalidProof:
        raise
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as error:
        raise InvalidProof(type(error).__name__) from None
    _check_claims(claims, method, url, now, access_token)
    return Proof(thumbprint(header["jwk"]), claims["jti"], claims["iat"])


def _check_header(header: dict[str, Any]) -> None:
    if header.get("typ") != "dpop+jwt":
        raise InvalidProof("typ is not dpop+jwt")
    if header.get("alg") not in ALGORITHMS:
        raise InvalidProof("not an accepted asymmetric algorithm")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or jwk.get("kty") not in ("EC", "RSA", "OKP"):
        raise InvalidProof("no public jwk")
    if PRIVATE_MEMBERS & set(jwk):
        raise InvalidProof("the jwk carries a private key")
    try:
        thumbprint(jwk)
    except ValueError:
        raise InvalidProof("the jwk lacks a required member") from None


def _check_claims(claims: dict[str, Any], method: str, url: str, now: float,
                  access_token: str | None) -> None:
    jti, issued_at = claims["jti"], claims["iat"]
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise InvalidProof("bad jti")
    if type(issued_at) is not int or abs(now - issued_at) > PROOF_WINDOW:
        raise InvalidProof("iat is not within the proof window")
    if claims["htm"] != method:
        raise InvalidProof("htm is not this request's method")
    htu = claims["htu"]
    if not isinstance(htu, str) or _target(htu) != _target(url):
        raise InvalidProof("htu is not this request's URL")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
                ath.encode(), access_token_hash(access_token).encode()):
            raise InvalidProof("ath is not this access token's hash")
