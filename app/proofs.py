"""DPoP proofs already used, remembered in the database for as long as they could be accepted,
so that a proof is used once across every worker and instance."""

from __future__ import annotations

import hashlib

from app.dpop import PROOF_WINDOW, InvalidProof, Proof
from app.models import SeenProof


def use_once(proof: Proof) -> None:
    """Remember ``proof``; InvalidProof when it was used before."""
    digest = hashlib.sha256(f"{proof.key_thumbprint}:{proof.jti}".encode()).hexdigest()
    inserted = (SeenProof.insert(digest=digest,
                                 expires_at=proof.issued_at + PROOF_WINDOW + 1)
                .on_conflict_ignore().as_rowcount().execute())
    if not inserted:
        raise InvalidProof("this proof was used before")


def prune(now: float) -> int:
    deleted: int = SeenProof.delete().where(SeenProof.expires_at < now).execute()
    return deleted
