"""The signing keys as stored: each worker's ring, read again every ``RELOAD_EVERY`` seconds
(and at once, at most once a second, when a token names a key it does not know), and the
operator's ``rotate``.

A new key is published at once and signs only ``GATEHOUSE_KEY_PUBLISH_AHEAD`` seconds later,
so every worker (and every verifier's JWKS cache) knows it before the first token it signs
arrives; which key signs at a moment is decided from the stored times alone, so every worker
agrees. The first key is made by whichever worker needs it first (``signs_from`` 0 is unique:
two workers racing make one); so is a key for a ``SECRET_KEY`` that opens none of them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import peewee
from cryptography.hazmat.primitives.asymmetric import ec

from app import signing
from app.db import write_transaction
from app.models import StoredKey

RELOAD_EVERY = 30.0  # seconds; GATEHOUSE_KEY_PUBLISH_AHEAD should be longer
FRESH_AT_MOST_EVERY = 1.0  # a token naming an unknown key reads the keys again, this often


def _public(jwk_text: str) -> ec.EllipticCurvePublicKey:
    jwk = json.loads(jwk_text)
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(signing.unb64url(jwk["x"]), "big"),
        int.from_bytes(signing.unb64url(jwk["y"]), "big"), ec.SECP256R1())
    return numbers.public_key()


class StoredRing:
    """One worker's view of the stored keys (``tokens.RingSource``)."""

    def __init__(self, secrets: Sequence[str], token_lifetime: float) -> None:
        self.secrets = tuple(secrets)  # SECRET_KEY first, then its fallbacks
        self.token_lifetime = token_lifetime
        self._ring: signing.KeyRing | None = None
        self._loaded_at = float("-inf")
        self._opened: dict[str, ec.EllipticCurvePrivateKey | None] = {}
        self._lock = threading.Lock()

    def ring(self, now: float, *, fresh: bool = False) -> signing.KeyRing:
        ring = self._ring
        if ring is not None and now < self._loaded_at + (FRESH_AT_MOST_EVERY if fresh
                                                         else RELOAD_EVERY):
            return ring
        with self._lock:
            if self._ring is not None and self._loaded_at > now - FRESH_AT_MOST_EVERY:
                return self._ring
            self._ring = self._load(now)
            self._loaded_at = now
            return self._ring

    def forget(self) -> None:
        """Read the keys again on next use (after this process rotated them)."""
        self._loaded_at = float("-inf")

    def _load(self, now: float) -> signing.KeyRing:
        ring = self._read()
        for attempt in range(2):
            if ring.signer(now) is not None:
                break
            # No key yet, or none that SECRET_KEY (or a fallback) opens: one of our own,
            # signing at once. Tokens of the keys we cannot open still verify. Several
            # workers may race here: SQLite may refuse one of them at once (a lock it would
            # otherwise deadlock on); the winner's key is then read, else it tries again.
            try:
                create_key(self.secrets[0], now, 0.0 if not ring.keys else now)
            except peewee.OperationalError:
                if attempt:
                    raise
            ring = self._read()
        return ring

    def _read(self) -> signing.KeyRing:
        keys = [signing.SigningKey(row.kid, _public(row.public_jwk), self._open(row),
                                   row.signs_from) for row in StoredKey.select()]
        return signing.KeyRing(keys, self.token_lifetime)

    def _open(self, row: StoredKey) -> ec.EllipticCurvePrivateKey | None:
        if row.kid not in self._opened:
            try:
                self._opened[row.kid] = signing.decrypt_private(row.encrypted_private, row.kid,
                                                                self.secrets)
            except signing.UndecryptableKey:
                self._opened[row.kid] = None
        return self._opened[row.kid]


def _store(kid: str, private: ec.EllipticCurvePrivateKey, secret: str, now: float,
           signs_from: float) -> None:
    StoredKey.create(kid=kid, public_jwk=json.dumps(signing.public_jwk(private.public_key())),
                     encrypted_private=signing.encrypt_private(private, kid, secret),
                     created_at=now, signs_from=signs_from)


def create_key(secret: str, now: float, signs_from: float) -> None:
    """A key that signs from ``signs_from`` (0: the first key, from the start); a no-op when
    another worker made one for that moment first."""
    kid, private = signing.new_key()
    try:
        with write_transaction():
            if not StoredKey.select().where(StoredKey.signs_from == signs_from).exists():
                _store(kid, private, secret, now, signs_from)
    except peewee.IntegrityError:
        pass


@dataclass(frozen=True)
class Rotated:
    kid: str
    signs_from: float
    retired: int  # keys deleted: no token they signed can still be live
    reencrypted: int  # private keys now encrypted under the current SECRET_KEY


def rotate(source: StoredRing, *, now: float, publish_ahead: float) -> Rotated:
    """Add a key that signs from ``now + publish_ahead``; delete retired keys; re-encrypt every
    private key still stored under the current ``SECRET_KEY``."""
    ring = source.ring(now, fresh=True)
    kid, private = signing.new_key()
    retired = [key.kid for key in ring.keys if ring.state(key, now) == "retired"]
    reencrypted = 0
    with write_transaction():
        if retired:
            StoredKey.delete().where(StoredKey.kid.in_(retired)).execute()
        for key in ring.keys:
            if key.kid in retired or key.private is None:
                continue
            StoredKey.update(encrypted_private=signing.encrypt_private(
                key.private, key.kid, source.secrets[0])).where(
                StoredKey.kid == key.kid).execute()
            reencrypted += 1
        _store(kid, private, source.secrets[0], now, now + publish_ahead)
    source.forget()
    return Rotated(kid, now + publish_ahead, len(retired), reencrypted)
