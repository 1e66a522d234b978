"""The BFF middleware: the only code that reads or writes credentials and ``g.auth``.

``open_auth`` runs before every request: it reads what the request presents through its
carrier (``app.carriers``), authenticates from the access token (signature, then the
session's liveness: as this worker remembers it, or one read) or, when that token is missing
or expired, rotates the session value transparently, GET or POST alike. ``save_auth`` runs
after the view and hands back new credentials only when something changed. Views speak to it
through ``app.signing_in``, ``login_required`` and ``current_principal``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

from flask import Flask, Request, Response, current_app, flash, g, has_request_context, request
from flask import redirect as redirect_to
from werkzeug.exceptions import Unauthorized

from app import audit, bearer, devices, keyproofs, liveness, settings, throttle, tokens, words
from app.carriers import BrowserCookies, CookieRequest, app_credential
from app.config import DEVICE_MAX_AGE
from app.security import is_api_request, mark_private
from app.sessions import rules, use
from app.sessions.rules import Issued
from app.sessions.state import Principal


class NotSignedIn(Unauthorized):
    """A JSON call that needs a signed-in person; ``reason`` says why a session just ended."""

    def __init__(self, reason: str | None) -> None:
        super().__init__()
        self.reason = reason


@dataclass
class AuthState:
    """One request's view of who is signed in, and what its response must do."""

    principal: Principal | None = None
    issued: Issued | None = None
    clear: bool = False
    ended_reason: str | None = None
    new_device: str | None = None  # a device cookie to set (this browser's first sign-in)
    offer: str | None = None  # a DBSC registration offer (a sign-in over HTTPS)
    bearer: bool = False  # an app's call with its token in the Authorization header
    credential_free: bool = False  # a view that reads no credential (``credential_free``)
    renew: bool = False  # the access credential is void: the holder renews it (a bound session)

    @property
    def signed_in(self) -> bool:
        return self.principal is not None


def init_app(app: Flask) -> None:
    app.request_class = CookieRequest
    app.extensions["gatehouse_token_cache"] = tokens.VerifiedTokenCache()
    app.extensions["gatehouse_carrier"] = BrowserCookies(settings.of(app).cookie)
    app.before_request(open_auth)
    app.after_request(save_auth)
    audit.set_device_source(device_hash)


def authenticates_itself(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view that reads its request's credentials itself (a DBSC refresh proves a key
    before its session value may rotate): ``open_auth`` leaves its request alone, and
    ``save_auth`` still hands back whatever the view issued or cleared."""
    view.authenticates_itself = True  # type: ignore[attr-defined]
    return view


def carrier() -> BrowserCookies:
    found: BrowserCookies = current_app.extensions["gatehouse_carrier"]
    return found


def auth_state() -> AuthState:
    state: AuthState = g.auth
    return state


def current_principal() -> Principal:
    """The signed-in person, in a view behind ``login_required`` (which guarantees one)."""
    principal = auth_state().principal
    if principal is None:
        raise RuntimeError("current_principal() outside a login_required view")
    return principal


def client_ip() -> str:
    return request.remote_addr or ""


def user_agent() -> str:
    """Untrusted text, stored without control characters (PostgreSQL refuses NUL)."""
    agent = request.environ.get("HTTP_USER_AGENT", "")[:512]
    # Every request compares it with the stored one: the common case costs one C call.
    return agent if agent.isprintable() else "".join(c for c in agent if c.isprintable())


def device_id() -> str:
    """This browser's device cookie, or "" when it has none (or one we never issued)."""
    value = g.auth.new_device or carrier().device(request)
    return value if devices.is_device_id(value) else ""


def device_hash() -> str:
    """The hash this browser's device is stored by; "" without one, or outside a request."""
    if not has_request_context() or "auth" not in g:
        return ""
    device = device_id()
    return tokens.token_hash(device) if device else ""


def device_name() -> str:
    """The name the signed-in person gave this browser, or ""."""
    return devices.name_of(current_principal().user_id, device_hash())


# Endpoints whose requests are never authenticated: static files, and the views marked
# ``credential_free``; and those whose views read their credentials themselves
# (``authenticates_itself``). ``note_credential_free`` adds them once the blueprints are in.
WITHOUT_CREDENTIALS = {"static"}
AUTHENTICATE_THEMSELVES: set[str] = set()


def credential_free(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view that reads no credential (a verifier's key set, an app's token endpoint): the
    request is never authenticated, so its response is no one's and no cookie is touched."""
    view.credential_free = True  # type: ignore[attr-defined]
    return view


def note_credential_free(app: Flask) -> None:
    for name, view in app.view_functions.items():
        if getattr(view, "credential_free", False):
            WITHOUT_CREDENTIALS.add(name)
        if getattr(view, "authenticates_itself", False):
            AUTHENTICATE_THEMSELVES.add(name)


def open_auth() -> None:
    g.auth = state = AuthState()
    # The request itself, not its proxy: each attribute read through the proxy costs a
    # context lookup, on every request.
    req: Request = cast(Any, request)._get_current_object()
    if req.endpoint in WITHOUT_CREDENTIALS:
        state.credential_free = True
        return
    if req.endpoint in AUTHENTICATE_THEMSELVES:
        return
    config = settings.current()
    at = config.clock()
    if ("HTTP_AUTHORIZATION" in req.environ and is_api_request()
            and app_credential(req) is not None):
        _open_bearer(state, config, at)
        return
    presented = carrier().presented(req)
    claims = _verified_claims(config, presented.access_token, at)
    if claims is not None and claims.client_id:  # an app's token is no browser's cookie
        claims = None
    try:
        state.principal = _live(claims, config, at) if claims else None
        if state.principal is None and presented.handle:
            guard = config.throttles.for_unknown_sessions(client_ip())
            with throttle.counting(guard, at, rules.SessionNotFound):
                state.issued, state.principal = use.rotate(
                    presented.handle, keys=config.keys, policy=config.policy, now=at,
                    ip_address=client_ip(), user_agent=user_agent())
    except rules.SessionEnded as ended:
        _forget(state, ended.reason)
    except rules.SessionNotFound:
        _forget(state, None)
    except throttle.Throttled:
        _forget(state, None)  # the 429 clears the unknown value, so signing in again works
        raise
    except rules.StaleHandle:
        # Replaced by a re-key moments ago, in a request already in flight: refuse it, but
        # leave the cookies alone so what the browser holds is not wiped.
        state.principal = None
    except rules.KeyProofMissing as refused:
        # A bound session presented without its key: a copy, or its owner's browser that
        # could not refresh. Refused, with the reason; the cookies stay, the session goes on.
        state.principal, state.ended_reason = None, refused.reason
        flash(words.KEY_MISSING_MESSAGE, "warning")


def _open_bearer(state: AuthState, config: settings.Settings, at: float) -> None:
    """An app's call: its access token alone, never with cookies (a request carrying both
    is refused), and never renewed here (the app refreshes at the token endpoint). A token
    bound to a key (``cnf.jkt``) needs the ``DPoP`` scheme and a fresh proof from that key."""
    token = bearer.access_token(request)
    state.bearer = True
    claims = _verified_claims(config, token, at)
    if claims is None or not claims.client_id or not bearer.proven(claims, token, at):
        return
    try:
        state.principal = _live(claims, config, at)
    except rules.SessionEnded as ended:
        state.ended_reason = ended.reason
    except (rules.SessionNotFound, rules.StaleHandle, rules.KeyProofMissing):
        pass


def _verified_claims(config: settings.Settings, token: str,
                     at: float) -> tokens.AccessClaims | None:
    if not token:
        return None
    cache: tokens.VerifiedTokenCache = current_app.extensions["gatehouse_token_cache"]
    try:
        return cache.decode(config.keys, token, issuer=config.policy.issuer, now=at)
    except tokens.InvalidAccessToken:
        return None


def _live(claims: tokens.AccessClaims, config: settings.Settings, at: float) -> Principal | None:
    """The token's session, if it is live; None for a token that predates a re-key, which is
    then treated like an expired one (the session value renews it, or nothing does)."""
    try:
        return use.check_live(claims, policy=config.policy, now=at, ip_address=client_ip(),
                              user_agent=user_agent(), memory=liveness.trusted_memory())
    except rules.StaleAccessToken:
        return None


def _forget(state: AuthState, reason: str | None) -> None:
    if reason == rules.SIGNED_OUT:
        # Signed out (or signed in anew) from this very browser: a request that was in flight
        # meanwhile must not clear or overwrite the cookies that the newer response set.
        state.principal = None
        return
    state.principal, state.issued, state.clear = None, None, True
    state.ended_reason = reason
    if reason:  # shown on the next page, even when a script's JSON call found out first
        said = words.end_reason(reason)
        flash(said.message, "security" if said.alert else "warning")


def save_auth(response: Response) -> Response:
    state: AuthState | None = g.get("auth")
    if state is None:
        return response
    if state.bearer:  # nothing to hand back; the response is the app's person's
        if state.signed_in:
            mark_private()
        return response
    if state.clear:
        carrier().clear(response)
    elif state.issued is not None:
        carrier().deliver(response, state.issued)
    elif state.renew:
        carrier().drop_access(response)
    if state.new_device is not None:
        carrier().remember_device(response, state.new_device, DEVICE_MAX_AGE)
    if state.offer is not None:
        response.headers[keyproofs.REGISTRATION_HEADER] = state.offer
    if state.signed_in or state.clear or state.renew or state.issued is not None:
        mark_private()
    return response


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pages redirect to the sign-in page with ``next``; JSON answers 401, never a redirect."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if auth_state().signed_in:
            return view(*args, **kwargs)
        if is_api_request():
            raise NotSignedIn(auth_state().ended_reason)
        return redirect_to(f"/login?next={quote(request.full_path.rstrip('?'), safe='/')}")

    return wrapped
