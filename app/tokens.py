"""The pure token core: access JWTs, session handles, refresh tokens and their hashes.

No Flask, no database, no clock: every input, ``now`` included, is an argument.

How the three secrets relate (``K_*`` are keys derived from ``SECRET_KEY``):

* the **session handle** is what the browser's ``__Host-session`` cookie holds. The first one
  of a session is random; each successor is ``HMAC(K_chain, predecessor)``, so every request
  that presents the same predecessor derives the *same* successor without any plaintext being
  stored, which is what lets parallel requests and lost responses converge on one value;
* the **refresh token** of a handle is ``HMAC(K_refresh, handle)``. It exists only in server
  memory while a request is handled; it is never sent to the browser, and the handle itself is
  never accepted as one;
* the database stores only ``SHA-256(refresh token)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "sid", "gen", "iat", "exp", "jti")
CLOCK_LEEWAY = 5  # seconds of tolerated skew between app instances (PyJWT #814)
HANDLE_BYTES = 32
MAX_TOKEN_LENGTH = 2048  # a real access token is ~330 bytes; anything longer is not ours


class InvalidAccessToken(Exception):
    """The access token is not one this server issued, or it is no longer valid."""


@dataclass(frozen=True)
class Keys:
    """Independent keys derived from the one configured secret."""

    access: bytes
    chain: bytes
    refresh: bytes

    @classmethod
    def derive(cls, secret: str) -> Keys:
        def sub(label: str) -> bytes:
            return hmac.new(secret.encode(), label.encode(), hashlib.sha256).digest()

        return cls(sub("gatehouse access-token v1"), sub("gatehouse handle-chain v1"),
                   sub("gatehouse refresh-token v1"))


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    issued_at: int
    expires_at: int
    token_id: str
    generation: int  # which of the session's values this token was issued with


def new_handle() -> str:
    return secrets.token_urlsafe(HANDLE_BYTES)


def new_public_id() -> str:
    return secrets.token_urlsafe(16)


def is_public_id(value: str) -> bool:
    """Whether ``value`` could be an id from ``new_public_id`` (checked before any lookup, so
    that no NUL or other garbage from a URL ever reaches the database)."""
    return len(value) == 22 and value.isascii() and _URLSAFE.issuperset(value)


_URLSAFE = frozenset(string.ascii_letters + string.digits + "-_")


def successor_handle(keys: Keys, handle: str) -> str:
    """The one successor of ``handle``: the same for every request that presents it."""
    digest = hmac.new(keys.chain, handle.encode(), hashlib.sha256).digest()
    return _b64(digest)


def key_challenge(keys: Keys, session_id: int, serial: int) -> str:
    """The DBSC challenge numbered ``serial`` of a session: unpredictable without the secret,
    and found again from its number (the database keeps only its hash)."""
    message = f"dbsc challenge {session_id} {serial}".encode()  # a handle never has a space
    return _b64(hmac.new(keys.chain, message, hashlib.sha256).digest())


def refresh_token(keys: Keys, handle: str) -> str:
    return _b64(hmac.new(keys.refresh, handle.encode(), hashlib.sha256).digest())


def token_hash(token: str) -> str:
    """What the database stores in place of a refresh token."""
    return hashlib.sha256(token.encode()).hexdigest()


def hashes_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def encode_access(keys: Keys, *, issuer: str, user_id: str, session_id: str, generation: int,
                  now: int, expires_at: int) -> str:
    """``generation`` is that of the session value issued with this token: a request that
    carries the token proves that the response delivering that value arrived."""
    claims = {
        "iss": issuer, "aud": issuer, "sub": user_id, "sid": session_id, "gen": generation,
        "iat": int(now), "exp": int(expires_at), "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, keys.access, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE})


def decode_access(keys: Keys, token: str, *, issuer: str, now: float) -> AccessClaims:
    """Verify signature, header and claims against ``now``; raise InvalidAccessToken otherwise.

    Expiry is checked here against the caller's clock rather than PyJWT's, so that one time
    source decides every session rule.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidAccessToken("absent or oversized")
    try:
        decoded = jwt.decode_complete(
            token, keys.access, algorithms=[ALGORITHM], audience=issuer, issuer=issuer,
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False,
                     "verify_iat": False, "verify_nbf": False},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidAccessToken(type(exc).__name__) from None
    return _checked_claims(decoded["header"], decoded["payload"], now)


def _checked_claims(header: dict[str, Any], payload: dict[str, Any], now: float) -> AccessClaims:
    if header.get("typ") != TOKEN_TYPE or set(header) - {"alg", "typ"}:
        raise InvalidAccessToken("unexpected header")
    values = [payload[name] for name in ("sub", "sid", "iat", "exp", "jti", "gen")]
    if not all(isinstance(v, str) for v in (values[0], values[1], values[4])):
        raise InvalidAccessToken("malformed claims")
    if not all(type(v) is int for v in (values[2], values[3])):
        raise InvalidAccessToken("malformed times")
    if type(values[5]) is not int or values[5] < 0:
        raise InvalidAccessToken("malformed generation")
    if values[3] <= now - CLOCK_LEEWAY:
        raise InvalidAccessToken("expired")
    not_before = payload.get("nbf", values[2])  # we never set it; a signed one must be sane
    if type(not_before) is not int:
        raise InvalidAccessToken("malformed times")
    if max(values[2], not_before) > now + CLOCK_LEEWAY:
        raise InvalidAccessToken("issued in the future")
    return AccessClaims(*values)


class VerifiedTokenCache:
    """Per-worker memo of signatures already verified, bounded in size.

    Only the signature check is memoised: expiry is re-checked against ``now`` on every hit, and
    session liveness is never cached, so revocation stays immediate.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._entries: OrderedDict[str, AccessClaims] = OrderedDict()

    def decode(self, keys: Keys, token: str, *, issuer: str, now: float) -> AccessClaims:
        claims = self._entries.get(token)
        if claims is None:
            claims = decode_access(keys, token, issuer=issuer, now=now)
            self._entries[token] = claims
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        elif claims.expires_at <= now - CLOCK_LEEWAY:
            self._entries.pop(token, None)
            raise InvalidAccessToken("expired")
        return claims


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
