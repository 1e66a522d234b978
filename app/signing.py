"""The access tokens' signing keys: ES256 key pairs, their ids, their storage form and which
one signs when. Pure: no Flask, no database, ``now`` is an argument.

* a key's id (``kid``) is its RFC 7638 thumbprint;
* its private half is stored encrypted with AES-256-GCM under a key derived (HKDF-SHA-256) from
  ``SECRET_KEY``, the kid as associated data, so a copy of the database alone cannot mint a
  token; older secrets (``GATEHOUSE_SECRET_KEY_FALLBACKS``) still decrypt;
* a ring of keys decides, at ``now``, which key signs (the newest whose ``signs_from`` has
  come) and which are published: every key not yet retired, a superseded key until the last
  token it signed has expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ALGORITHM = "ES256"
NONCE_BYTES = 12
# RFC 7638 3.2: the required public members of each key type, the only ones hashed.
REQUIRED_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
                    "OKP": ("crv", "kty", "x")}
# Members that only a private key has (RFC 7518 6.2.2, 6.3.2; "k": a symmetric key).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class UndecryptableKey(Exception):
    """No configured secret decrypts a stored private key."""


def b64url(raw: bytes) -> str:
    """base64url without padding (RFC 7515 2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """The bytes ``b64url`` encoded; ValueError (binascii.Error) if ``text`` is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(public: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public key as a JWK with only the members RFC 7638 hashes (crv, kty, x, y)."""
    numbers = public.public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big"))}


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace. EC, RSA and
    OKP keys (the kinds a DPoP or DBSC proof may carry)."""
    required = REQUIRED_MEMBERS.get(str(jwk.get("kty")))
    if required is None or not all(isinstance(jwk.get(name), str) for name in required):
        raise ValueError("not a public key this server can take a thumbprint of")
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"),
                           sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def _wrapping_key(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"gatehouse signing-key wrap v1").derive(secret.encode())


def encrypt_private(private: ec.EllipticCurvePrivateKey, kid: str, secret: str) -> str:
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    nonce = os.urandom(NONCE_BYTES)
    return b64url(nonce + AESGCM(_wrapping_key(secret)).encrypt(nonce, der, kid.encode()))


def decrypt_private(stored: str, kid: str, secrets: Iterable[str]) -> ec.EllipticCurvePrivateKey:
    """The private key ``stored`` holds, decrypted with the first of ``secrets`` that can."""
    raw = unb64url(stored)
    for secret in secrets:
        try:
            der = AESGCM(_wrapping_key(secret)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                                         kid.encode())
        except Exception:  # cryptography's InvalidTag: not this secret
            continue
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise UndecryptableKey(kid)
        return key
    raise UndecryptableKey(kid)


def new_key() -> tuple[str, ec.EllipticCurvePrivateKey]:
    """A fresh P-256 key pair and its kid."""
    private = ec.generate_private_key(ec.SECP256R1())
    return thumbprint(public_jwk(private.public_key())), private


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public: ec.EllipticCurvePublicKey
    private: ec.EllipticCurvePrivateKey | None  # None when no configured secret opens it
    signs_from: float  # when it starts signing (published before: verifiers' caches)


class KeyRing:
    """The stored keys as one worker knows them, ordered by when each starts signing."""

    def __init__(self, keys: Sequence[SigningKey], token_lifetime: float) -> None:
        self.keys = sorted(keys, key=lambda key: (key.signs_from, key.kid))
        self.token_lifetime = token_lifetime  # how long a signed token may still verify
        self._by_kid = {key.kid: key for key in self.keys}

    def signer(self, now: float) -> SigningKey | None:
        """The newest key whose time has come and that this worker can open."""
        usable = [key for key in self.keys if key.signs_from <= now and key.private is not None]
        return usable[-1] if usable else None

    def retires_at(self, key: SigningKey) -> float | None:
        """When the last token ``key`` may have signed has expired: a token lifetime (and the
        clock leeway) after the next key started signing; None while nothing replaced it."""
        later = [other.signs_from for other in self.keys
                 if (other.signs_from, other.kid) > (key.signs_from, key.kid)]
        return min(later) + self.token_lifetime + 5 if later else None

    def state(self, key: SigningKey, now: float) -> str:
        """``next`` (published, not signing yet), ``signing``, ``verifying`` (replaced, its
        tokens may still be live) or ``retired``."""
        if key.signs_from > now:
            return "next"
        retires = self.retires_at(key)
        if retires is None or (self.signer(now) is key):
            return "signing"
        return "verifying" if now < retires else "retired"

    def verifier(self, kid: str, now: float) -> ec.EllipticCurvePublicKey | None:
        key = self._by_kid.get(kid)
        if key is None or self.state(key, now) == "retired":
            return None
        return key.public

    def published(self, now: float) -> list[SigningKey]:
        return [key for key in self.keys if self.state(key, now) != "retired"]

    def jwks(self, now: float) -> dict[str, list[dict[str, str]]]:
        return {"keys": [{**public_jwk(key.public), "kid": key.kid, "use": "sig",
                          "alg": ALGORITHM} for key in self.published(now)]}
