"""What an app's call carries: its access token in the ``Authorization`` header (never with
cookies), and for a token bound to a key (``cnf.jkt``) a DPoP proof of this very request."""

from __future__ import annotations

from flask import Request, request

from app import carriers, dpop, proofs, tokens
from app.carriers import AppHeader, app_credential
from app.security import BearerWithCookies


def access_token(req: Request) -> str:
    """The app's access token; a request that carries the browser's cookies too is refused."""
    if req.cookies.get(carriers.ACCESS_COOKIE) or req.cookies.get(carriers.SESSION_COOKIE):
        raise BearerWithCookies()
    return AppHeader().presented(req).access_token


def proven(claims: tokens.AccessClaims, token: str, at: float) -> bool:
    """Whether the call proves what its token is bound to: nothing for a Bearer token; for a
    DPoP-bound one, a proof of this request, by that key, with this token's hash, never used
    before."""
    dpop_scheme = (app_credential(request) or ("", ""))[0] == "dpop"
    if not claims.key_thumbprint and not dpop_scheme:
        return True
    sent = request.headers.getlist("DPoP")
    if not claims.key_thumbprint or not dpop_scheme or len(sent) != 1:
        return False
    try:
        proof = dpop.verify(sent[0], method=request.method, url=request.base_url, now=at,
                            access_token=token)
        if not tokens.hashes_equal(proof.key_thumbprint, claims.key_thumbprint):
            return False
        proofs.use_once(proof)
    except dpop.InvalidProof:
        return False
    return True
