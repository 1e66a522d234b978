"""The BFF middleware: the only code that reads or writes the auth cookies and ``g.auth``.

``open_auth`` runs before every request: it authenticates from the access cookie (signature,
then the session's liveness: as this worker remembers it, or one indexed lookup) or, when that
token is missing or expired, rotates the session handle transparently, GET or POST alike.
``save_auth`` runs after the view and writes cookies only when something changed. Views speak
to it through ``sign_in``, ``sign_out``, ``end_session``, ``end_other_sessions``,
``login_required`` and ``current_principal``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

from flask import (
    Flask,
    Request,
    Response,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    request,
)
from flask import session as cookie_session  # Flask's signed cookie: CSRF secret and flashes
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import Unauthorized
from werkzeug.sansio.http import parse_cookie
from werkzeug.utils import cached_property

from app import (
    audit,
    devices,
    session_changes,
    session_rules,
    session_store,
    settings,
    throttle,
    tokens,
)
from app.models import User
from app.security import is_api_request, mark_private
from app.session_rules import Issued, Principal

ACCESS_COOKIE = "__Host-access"
SESSION_COOKIE = "__Host-session"
# Identifies the browser, not the person: set at its first sign-in, kept a year, through
# sign-outs. It authenticates nothing on its own (see devices.py).
DEVICE_COOKIE = "__Host-device"
DEVICE_MAX_AGE = 365 * 24 * 3600


class NotSignedIn(Unauthorized):
    """A JSON call that needs a signed-in person; ``reason`` says why a session just ended."""

    def __init__(self, reason: str | None) -> None:
        super().__init__()
        self.reason = reason


@dataclass
class AuthState:
    """One request's view of who is signed in, and what its response must do to the cookies."""

    principal: Principal | None = None
    issued: Issued | None = None
    clear: bool = False
    ended_reason: str | None = None
    new_device: str | None = None  # a device cookie to set (this browser's first sign-in)

    @property
    def signed_in(self) -> bool:
        return self.principal is not None


class CookieRequest(Request):
    """Flask's request, with the cookies found without a scan of every request header.

    werkzeug joins ``headers.getlist("Cookie")``, which walks the whole WSGI environ; a WSGI
    server puts every Cookie header into the one ``HTTP_COOKIE`` key (PEP 3333), so reading
    that key gives the same string. Parsing is werkzeug's own. ``python -m bench.shims``:
    4.3 % of the instructions of ``GET /api/me`` (807,293 without, 772,313 with).
    """

    @cached_property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        # werkzeug's own Request.cookies makes the same call with the same storage class.
        return cast(ImmutableMultiDict[str, str], parse_cookie(
            self.environ.get("HTTP_COOKIE", ""), cls=self.dict_storage_class))


def init_app(app: Flask) -> None:
    app.request_class = CookieRequest
    app.extensions["gatehouse_token_cache"] = tokens.VerifiedTokenCache()
    app.before_request(open_auth)
    app.after_request(save_auth)
    audit.set_device_source(device_hash)


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


def device_id() -> str:
    """This browser's device cookie, or "" when it has none (or one we never issued)."""
    value = g.auth.new_device or request.cookies.get(DEVICE_COOKIE, "")
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


def open_auth() -> None:
    g.auth = state = AuthState()
    if request.endpoint == "static":
        return
    config, cookies = settings.current(), request.cookies
    at = config.clock()
    handle = cookies.get(SESSION_COOKIE, "")
    claims = _verified_claims(config, cookies.get(ACCESS_COOKIE, ""), at)
    try:
        state.principal = _live(claims, config, at) if claims else None
        if state.principal is None and handle:
            guard = config.throttles.for_unknown_sessions(client_ip())
            with throttle.counting(guard, at, session_rules.SessionNotFound):
                state.issued, state.principal = session_store.rotate(
                    handle, keys=config.keys, policy=config.policy, now=at,
                    ip_address=client_ip(), user_agent=user_agent())
    except session_rules.SessionEnded as ended:
        _forget(state, ended.reason)
    except session_rules.SessionNotFound:
        _forget(state, None)
    except throttle.Throttled:
        _forget(state, None)  # the 429 clears the unknown value, so signing in again works
        raise
    except session_rules.StaleHandle:
        # Replaced by a re-key moments ago, in a request already in flight: refuse it, but
        # leave the cookies alone so the newer value the browser holds is not wiped.
        state.principal = None


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
    then treated like an expired one (the session cookie renews it, or nothing does)."""
    try:
        return session_store.touch_live(claims, policy=config.policy, now=at,
                                        ip_address=client_ip(), user_agent=user_agent(),
                                        memory=session_changes.trusted_memory())
    except session_rules.StaleAccessToken:
        return None


def _forget(state: AuthState, reason: str | None) -> None:
    if reason == session_rules.SIGNED_OUT:
        # Signed out (or signed in anew) from this very browser: a request that was in flight
        # meanwhile must not clear or overwrite the cookies that the newer response set.
        state.principal = None
        return
    state.principal, state.issued, state.clear = None, None, True
    state.ended_reason = reason
    if reason:  # shown on the next page, even when a script's JSON call found out first
        words = session_rules.end_reason(reason)
        flash(words.message, "security" if words.alert else "warning")


def save_auth(response: Response) -> Response:
    state: AuthState | None = g.get("auth")
    if state is None:
        return response
    cookie = settings.current().cookie
    if state.clear:
        for name in (ACCESS_COOKIE, SESSION_COOKIE):
            response.delete_cookie(name, **cookie)
    elif state.issued is not None:
        issued = state.issued
        response.set_cookie(ACCESS_COOKIE, issued.access_token, max_age=issued.access_max_age,
                            **cookie)
        response.set_cookie(SESSION_COOKIE, issued.handle, max_age=issued.handle_max_age,
                            **cookie)
    if state.new_device is not None:
        response.set_cookie(DEVICE_COOKIE, state.new_device, max_age=DEVICE_MAX_AGE, **cookie)
    if state.signed_in or state.clear or state.issued is not None:
        mark_private()
    return response


# --- the interface for views -------------------------------------------------------------


def sign_in(user: User, method: str = "password") -> None:
    """Start a new session for ``user``, who proved who they are by ``method`` ("password",
    or "reset": a mailed link); whatever this browser held before is discarded."""
    state, config = auth_state(), settings.current()
    at = config.clock()
    if state.principal is not None:
        try:
            session_store.revoke(state.principal.session_public_id,
                                 user_id=state.principal.user_id,
                                 reason=session_rules.SIGNED_OUT, now=at, ip_address=client_ip())
        except session_rules.SessionNotFound:
            pass  # ended by this very request (a password reset ends every session)
    cookie_session.clear()  # a planted CSRF secret or flash does not survive sign-in
    device = device_id()
    if not device:
        device = state.new_device = tokens.new_handle()
    known = devices.is_known(user.id, device)
    state.issued = session_store.start(user, keys=config.keys, policy=config.policy, now=at,
                                       user_agent=user_agent(), ip_address=client_ip(),
                                       new_device=not known, device_hash=device_hash(),
                                       method=method)
    devices.remember(user.id, device, at, user_agent())
    state.clear, state.principal = False, None


def origin() -> dict[str, Any]:
    """When, from which address and with which browser this request came: what a mail it
    causes says about it."""
    return {"now": settings.now(), "ip": client_ip(), "user_agent": user_agent()}


def user_agent() -> str:
    """Untrusted text, stored without control characters (PostgreSQL refuses NUL)."""
    agent = request.environ.get("HTTP_USER_AGENT", "")[:512]
    # Every request compares it with the stored one: the common case costs one C call.
    return agent if agent.isprintable() else "".join(c for c in agent if c.isprintable())


def sign_out() -> None:
    """End this browser's session and clear its cookies; nothing is re-set on this response."""
    state = auth_state()
    if state.principal is not None:
        session_store.revoke(state.principal.session_public_id, user_id=state.principal.user_id,
                             reason=session_rules.SIGNED_OUT, now=settings.now(),
                             ip_address=client_ip())
    cookie_session.clear()
    state.principal, state.issued, state.clear = None, None, True


def end_session(session_public_id: str) -> bool:
    """End one of the signed-in person's sessions, from this one; True when it was this very
    session, which is then signed out (its cookies cleared) like ``sign_out``.

    SessionNotFound for someone else's session or one already ended.
    """
    principal = current_principal()
    if session_public_id == principal.session_public_id:
        sign_out()
        return True
    session_store.revoke(session_public_id, user_id=principal.user_id,
                         reason=session_rules.REVOKED, now=settings.now(),
                         ip_address=client_ip(), actor=principal.session_public_id)
    return False


def end_other_sessions(reason: str) -> session_store.Counted:
    """End every other session of the signed-in person and re-key this one, so that a copy of
    this browser's cookies is cut off too. Returns how many sessions were ended, on how many
    devices."""
    state, principal, config = auth_state(), current_principal(), settings.current()
    at = config.clock()
    ended = session_store.revoke_all(principal.user_id, reason=reason, now=at,
                                     keep=principal.session_id, ip_address=client_ip(),
                                     actor=principal.session_public_id)
    state.issued = session_store.rekey(principal, keys=config.keys, policy=config.policy, now=at)
    return ended


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pages redirect to the sign-in page with ``next``; JSON answers 401, never a redirect."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if auth_state().signed_in:
            return view(*args, **kwargs)
        if is_api_request():
            raise NotSignedIn(auth_state().ended_reason)
        return redirect(f"/login?next={quote(request.full_path.rstrip('?'), safe='/')}")

    return wrapped
