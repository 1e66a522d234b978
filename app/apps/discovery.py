"""What a verifier fetches: the public signing keys (RFC 7517 JWK Set)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from app import settings
from app.apps import bp
from app.middleware import credential_free

# Verifiers may cache the set this long; a new key is published well before it signs
# (GATEHOUSE_KEY_PUBLISH_AHEAD, 600 s by default).
JWKS_MAX_AGE = 300


@bp.route("/.well-known/jwks.json")
@credential_free
def jwks() -> Response:
    config = settings.current()
    at = config.clock()
    body: dict[str, Any] = config.keys.ring_source.ring(at).jwks(at)
    response = jsonify(body)
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return response
