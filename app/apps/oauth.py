"""The OAuth 2.0 endpoints an app uses (RFC 6749 with PKCE, RFC 8252, RFC 7009, RFC 8414,
RFC 9207): the consent page, the token endpoint, revocation and the server's metadata.

``/oauth/token`` and ``/oauth/revoke`` read no cookie (``credential_free``): an app proves
itself with what it posts, so a browser's cookies can neither help nor be abused there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, abort, jsonify, make_response, redirect, render_template, request

from app import dpop, grants, proofs, settings
from app.apps import bp
from app.middleware import (
    client_ip,
    credential_free,
    current_principal,
    login_required,
    user_agent,
)
from app.oauth_rules import redirect_source, valid_challenge
from app.security import CONTENT_SECURITY_POLICY

AUTHORIZE_FIELDS = ("response_type", "client_id", "redirect_uri", "state", "code_challenge",
                    "code_challenge_method")


def issuer() -> str:
    """This server's issuer identifier (RFC 8414, RFC 9207): its public origin."""
    return settings.current().public_url or request.host_url.rstrip("/")


def _back(redirect_uri: str, **params: str) -> Any:
    joiner = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + joiner + urlencode({**params, "iss": issuer()}), code=302)


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    """Ask the signed-in person whether the app may sign in; answer the app at its redirect
    URI. An unknown app or an unregistered redirect URI never redirects."""
    values = request.values
    fields = {name: values.get(name, "") for name in AUTHORIZE_FIELDS}
    client = grants.find(fields["client_id"])
    if client is None or not grants.redirect_allowed(client, fields["redirect_uri"]):
        abort(400)
    state = {"state": fields["state"]} if fields["state"] else {}
    if fields["response_type"] != "code":
        return _back(fields["redirect_uri"], error="unsupported_response_type", **state)
    if fields["code_challenge_method"] != "S256" or not valid_challenge(
            fields["code_challenge"]):
        return _back(fields["redirect_uri"], error="invalid_request",
                     error_description="PKCE with code_challenge_method=S256 is required",
                     **state)
    return _consent(client, fields, state)


@login_required
def _consent(client: Any, fields: dict[str, str], state: dict[str, str]) -> Any:
    if request.method == "GET":
        response = make_response(render_template("apps/consent.html", client=client,
                                                 fields=fields))
        # Allow's answer redirects to the app: the form may go there, and nowhere else.
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'",
            f"form-action 'self' {redirect_source(fields['redirect_uri'])}")
        return response
    if request.form.get("decision") != "allow":
        return _back(fields["redirect_uri"], error="access_denied", **state)
    config = settings.current()
    code = grants.new_code(client, fields["redirect_uri"], fields["code_challenge"],
                           current_principal(), config.clock())
    return _back(fields["redirect_uri"], code=code, **state)


def _token_response(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _error(error: grants.OAuthError) -> Response:
    response = _token_response({"error": error.error, "error_description": error.description},
                               error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="gatehouse"'  # RFC 6749 5.2
    return response


def _client() -> Any:
    client = grants.find(request.form.get("client_id", ""))
    if client is None:
        raise grants.OAuthError("invalid_client", "Unknown client_id.", 401)
    return client


def _tokens(granted: grants.Granted) -> dict[str, Any]:
    issued = granted.issued
    return {"access_token": issued.access_token,
            "token_type": "DPoP" if granted.bound else "Bearer",
            "expires_in": issued.access_max_age, "refresh_token": issued.handle}


def _proof(now: float) -> dpop.Proof | None:
    """The request's DPoP proof, checked and used up; None without one."""
    sent = request.headers.getlist("DPoP")
    if not sent:
        return None
    try:
        if len(sent) > 1:
            raise dpop.InvalidProof("more than one DPoP header")
        proof = dpop.verify(sent[0], method=request.method, url=request.base_url, now=now)
        proofs.use_once(proof)
    except dpop.InvalidProof as error:
        raise grants.OAuthError("invalid_dpop_proof", f"DPoP proof refused: {error}") from None
    return proof


@bp.route("/oauth/token", methods=["POST"])
@credential_free
def token() -> Response:
    config = settings.current()
    form = request.form
    try:
        if request.mimetype != "application/x-www-form-urlencoded":
            raise grants.OAuthError("invalid_request", "The body must be form-encoded.")
        client = _client()
        at = config.clock()
        common: dict[str, Any] = dict(keys=config.keys, policy=config.policy, now=at,
                                      ip_address=client_ip(), user_agent=user_agent(),
                                      proof=_proof(at))
        grant = form.get("grant_type", "")
        if grant == "authorization_code":
            missing = [name for name in ("code", "redirect_uri", "code_verifier")
                       if not form.get(name)]
            if missing:
                raise grants.OAuthError("invalid_request", f"Missing {', '.join(missing)}.")
            granted = grants.redeem(form["code"], client=client,
                                   redirect_uri=form["redirect_uri"],
                                   verifier=form["code_verifier"], **common)
        elif grant == "refresh_token":
            if not form.get("refresh_token"):
                raise grants.OAuthError("invalid_request", "Missing refresh_token.")
            granted = grants.refresh(form["refresh_token"], client=client, **common)
        elif not grant:
            raise grants.OAuthError("invalid_request", "Missing grant_type.")
        else:
            raise grants.OAuthError("unsupported_grant_type",
                                    "Only authorization_code and refresh_token.")
    except grants.OAuthError as error:
        return _error(error)
    return _token_response(_tokens(granted))


@bp.route("/oauth/revoke", methods=["POST"])
@credential_free
def revoke() -> Response:
    """RFC 7009: 200 whatever the token was (an unknown one is already useless)."""
    config = settings.current()
    try:
        client = _client()
    except grants.OAuthError as error:
        return _error(error)
    if request.form.get("token_type_hint", "refresh_token") not in ("refresh_token",
                                                                   "access_token"):
        return _error(grants.OAuthError("unsupported_token_type", "Refresh tokens only."))
    grants.revoke(request.form.get("token", ""), client=client, keys=config.keys,
                  now=config.clock(), ip_address=client_ip())
    return _token_response({})


@bp.route("/.well-known/oauth-authorization-server")
@credential_free
def metadata() -> Response:
    base = issuer()
    response = jsonify({
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": True,
        "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),
    })
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
