"""The pure token core: access JWTs, session handles, refresh tokens and their hashes.

No Flask, no database, no clock: every input, ``now`` included, is an argument.

Access tokens are signed with ES256 by the key ring (``app.signing``), whose keys live in the
database; the header names the key by ``kid``. How the session's secrets relate (``K_*`` are
keys derived from ``SECRET_KEY``; those derived from an older secret still find a value
issued under it, see ``GATEHOUSE_SECRET_KEY_FALLBACKS``):

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

import hashlib
import hmac
import secrets
import string
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from app.signing import ALGORITHM, KeyRing, b64url

TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "sid", "gen", "iat", "exp", "jti")
CLOCK_LEEWAY = 5  # seconds of tolerated skew between app instances (PyJWT #814)
HANDLE_BYTES = 32
MAX_TOKEN_LENGTH = 2048  # a real access token is ~330 bytes; anything longer is not ours


class InvalidAccessToken(Exception):
    """The access token is not one this server issued, or it is no longer valid."""


class RingSource(Protocol):
    """Where the signing keys come from (``app.keystore`` reads them from the database).
    ``fresh``: a key this worker does not know was named; look again (rate-limited)."""

    def ring(self, now: float, *, fresh: bool = False) -> KeyRing: ...


class FixedRing:
    """A ring that never changes: for code that holds its keys itself (tests, benchmarks)."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def ring(self, now: float, *, fresh: bool = False) -> KeyRing:
        return self._ring


@dataclass(frozen=True)
class Keys:
    """Independent keys derived from the one configured secret, the refresh keys of the
    secrets it replaced, and the access tokens' signing keys."""

    chain: bytes
    refresh: bytes
    signing: RingSource | None = None  # None: these keys handle session values only
    earlier_refresh: tuple[bytes, ...] = ()

    @classmethod
    def derive(cls, secret: str, signing: RingSource | None = None,
               fallbacks: tuple[str, ...] = ()) -> Keys:
        def sub(key: str, label: str) -> bytes:
            return hmac.new(key.encode(), label.encode(), hashlib.sha256).digest()

        return cls(sub(secret, "gatehouse handle-chain v1"),
                   sub(secret, "gatehouse refresh-token v1"), signing,
                   tuple(sub(old, "gatehouse refresh-token v1") for old in fallbacks))

    @property
    def ring_source(self) -> RingSource:
        if self.signing is None:
            raise RuntimeError("these keys have no signing keys")
        return self.signing

    def presented_hashes(self, handle: str) -> list[str]:
        """What the database may store for ``handle``: its refresh token's hash under the
        current secret, then under each older one."""
        return [token_hash(b64url(hmac.new(key, handle.encode(), hashlib.sha256).digest()))
                for key in (self.refresh, *self.earlier_refresh)]


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    issued_at: int
    expires_at: int
    token_id: str
    generation: int  # which of the session's values this token was issued with
    client_id: str = ""  # the app it was issued to; "" for a browser
    key_thumbprint: str = ""  # cnf.jkt: the key each use must prove (DPoP); "" for none


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
    return b64url(digest)


def key_challenge(keys: Keys, session_id: int, serial: int) -> str:
    """The DBSC challenge numbered ``serial`` of a session: unpredictable without the secret,
    and found again from its number (the database keeps only its hash)."""
    message = f"dbsc challenge {session_id} {serial}".encode()  # a handle never has a space
    return b64url(hmac.new(keys.chain, message, hashlib.sha256).digest())


def refresh_token(keys: Keys, handle: str) -> str:
    return b64url(hmac.new(keys.refresh, handle.encode(), hashlib.sha256).digest())


def token_hash(token: str) -> str:
    """What the database stores in place of a refresh token."""
    return hashlib.sha256(token.encode()).hexdigest()


def hashes_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def encode_access(keys: Keys, *, issuer: str, user_id: str, session_id: str, generation: int,
                  now: int, expires_at: int, client_id: str = "",
                  key_thumbprint: str = "") -> str:
    """``generation`` is that of the session value issued with this token: a request that
    carries the token proves that the response delivering that value arrived. ``client_id``:
    the app it is issued to, for an app's session; ``key_thumbprint``: the key every use of
    it must prove (``cnf.jkt``, RFC 9449)."""
    claims: dict[str, Any] = {
        "iss": issuer, "aud": issuer, "sub": user_id, "sid": session_id, "gen": generation,
        "iat": int(now), "exp": int(expires_at), "jti": uuid.uuid4().hex,
    }
    if client_id:
        claims["client_id"] = client_id
    if key_thumbprint:
        claims["cnf"] = {"jkt": key_thumbprint}
    source = keys.ring_source
    signer = source.ring(now).signer(now) or source.ring(now, fresh=True).signer(now)
    if signer is None or signer.private is None:
        raise RuntimeError("no signing key can be opened with SECRET_KEY or its fallbacks")
    return jwt.encode(claims, signer.private, algorithm=ALGORITHM,
                      headers={"typ": TOKEN_TYPE, "kid": signer.kid})


def decode_access(keys: Keys, token: str, *, issuer: str, now: float) -> AccessClaims:
    """Verify signature, header and claims against ``now``; raise InvalidAccessToken otherwise.

    Expiry is checked here against the caller's clock rather than PyJWT's, so that one time
    source decides every session rule.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidAccessToken("absent or oversized")
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str):
            raise InvalidAccessToken("no kid")
        source = keys.ring_source
        public = (source.ring(now).verifier(kid, now)
                  or source.ring(now, fresh=True).verifier(kid, now))
        if public is None:
            raise InvalidAccessToken("unknown or retired key")
        decoded = jwt.decode_complete(
            token, public, algorithms=[ALGORITHM], audience=issuer, issuer=issuer,
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False,
                     "verify_iat": False, "verify_nbf": False},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidAccessToken(type(exc).__name__) from None
    return _checked_claims(decoded["header"], decoded["payload"], now)


def _checked_claims(header: dict[str, Any], payload: dict[str, Any], now: float) -> AccessClaims:
    if header.get("typ") != TOKEN_TYPE or set(header) - {"alg", "typ", "kid"}:
        raise InvalidAccessToken("unexpected header")
    values: list[Any] = [payload[name] for name in ("sub", "sid", "iat", "exp", "jti", "gen")]
    if not all(isinstance(v, str) for v in (values[0], values[1], values[4])):
        raise InvalidAccessToken("malformed claims")
    # Validly signed is not well formed: ids are checked before any lookup, so that a NUL
    # (which PostgreSQL text cannot hold) or other garbage never reaches the database.
    if not (is_public_id(values[0]) and is_public_id(values[1])):
        raise InvalidAccessToken("malformed ids")
    if not all(type(v) is int for v in (values[2], values[3])):
        raise InvalidAccessToken("malformed times")
    if type(values[5]) is not int or values[5] < 0:
        raise InvalidAccessToken("malformed generation")
    client_id, confirmation = payload.get("client_id", ""), payload.get("cnf", {})
    if not isinstance(client_id, str) or not isinstance(confirmation, dict):
        raise InvalidAccessToken("malformed claims")
    thumbprint = confirmation.get("jkt", "")
    if not isinstance(thumbprint, str):
        raise InvalidAccessToken("malformed claims")
    if values[3] <= now - CLOCK_LEEWAY:
        raise InvalidAccessToken("expired")
    not_before = payload.get("nbf", values[2])  # we never set it; a signed one must be sane
    if type(not_before) is not int:
        raise InvalidAccessToken("malformed times")
    if max(values[2], not_before) > now + CLOCK_LEEWAY:
        raise InvalidAccessToken("issued in the future")
    sub, sid, issued, expires, jti, generation = values
    return AccessClaims(sub, sid, issued, expires, jti, generation, client_id, thumbprint)


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
