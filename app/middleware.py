"""The BFF middleware: the only code that reads or writes the auth cookies and ``g.auth``.

``open_auth`` runs before every request: it authenticates from the access cookie (signature,
then the session's liveness, one indexed lookup) or, when that token is missing or expired,
rotates the session handle transparently, GET or POST alike. ``save_auth`` runs after the view
and writes cookies only when something changed. Views speak to it through ``sign_in``,
``sign_out``, ``end_other_sessions`` and ``login_required``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import (
    Flask,
    Request,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    request,
    session,
)
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.sansio.http import parse_cookie
from werkzeug.utils import cached_property

from app import sessions, throttle, tokens
from app.models import User

ACCESS_COOKIE = "__Host-access"
SESSION_COOKIE = "__Host-session"
ISSUER = "gatehouse"

ENDED_MESSAGES = {
    sessions.REVOKED: "This session was signed out from another device.",
    sessions.REVOKED_OTHERS: "This session was signed out from another device.",
    sessions.PASSWORD_CHANGED: "Your password was changed, so this session was ended.",
    sessions.REUSE_DETECTED: ("This session was ended because a copy of its sign-in cookie was "
                              "used somewhere else. Sign in again; if this was not you, change "
                              "your password."),
    sessions.IDLE_TIMEOUT: "Your session ended after a period of inactivity.",
    sessions.EXPIRED: "Your session reached its maximum age.",
}


@dataclass
class Gatehouse:
    """What the middleware needs, built once per app."""

    keys: tokens.Keys
    policy: sessions.Policy
    cache: tokens.VerifiedTokenCache
    clock: Callable[[], float]
    unknown_session_limit: int  # unknown session values per client address per window
    unknown_session_window: int


@dataclass
class AuthState:
    """One request's view of who is signed in, and what its response must do to the cookies."""

    principal: sessions.Principal | None = None
    issued: sessions.Issued | None = None
    clear: bool = False
    ended_reason: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.principal is not None


class CookieRequest(Request):
    """Flask's request, with the cookies found without a scan of every request header.

    werkzeug joins ``headers.getlist("Cookie")``, which walks the whole WSGI environ; a WSGI
    server puts every Cookie header into the one ``HTTP_COOKIE`` key (PEP 3333), so reading
    that key gives the same string. Parsing is werkzeug's own.
    """

    @cached_property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        return parse_cookie(self.environ.get("HTTP_COOKIE", ""), cls=self.dict_storage_class)


def init_app(app: Flask) -> None:
    app.request_class = CookieRequest
    config = app.config
    app.extensions["gatehouse"] = Gatehouse(
        keys=tokens.Keys.derive(config["SECRET_KEY"]),
        policy=sessions.Policy(
            issuer=ISSUER, access_ttl=config["GATEHOUSE_ACCESS_TOKEN_TTL"],
            grace=config["GATEHOUSE_REFRESH_GRACE"],
            lost_response_window=config["GATEHOUSE_LOST_RESPONSE_WINDOW"],
            idle_ttl=config["GATEHOUSE_SESSION_IDLE_TTL"],
            max_age=config["GATEHOUSE_SESSION_MAX_AGE"]),
        cache=tokens.VerifiedTokenCache(),
        clock=config.get("GATEHOUSE_CLOCK", time.time),
        unknown_session_limit=config["GATEHOUSE_SESSION_LIMIT_IP"],
        unknown_session_window=config["GATEHOUSE_LOGIN_LIMIT_WINDOW"],
    )
    app.before_request(open_auth)
    app.after_request(save_auth)


def gatehouse() -> Gatehouse:
    return current_app.extensions["gatehouse"]


def now() -> float:
    return gatehouse().clock()


def auth() -> AuthState:
    return g.auth


def client_ip() -> str:
    return request.remote_addr or ""


def open_auth() -> None:
    g.auth = state = AuthState()
    if request.endpoint == "static":
        return
    ext, cookies = gatehouse(), request.cookies
    at = ext.clock()
    handle = cookies.get(SESSION_COOKIE, "")
    claims = _verified_claims(ext, cookies.get(ACCESS_COOKIE, ""), at)
    try:
        state.principal = _live(claims, ext, at) if claims else None
        if state.principal is None and handle:
            state.issued = sessions.rotate_guarded(
                handle, guard=_unknown_session_guard(ext), keys=ext.keys, policy=ext.policy,
                now=at, ip_address=client_ip())
            state.principal = sessions.check_live(
                state.issued.session_public_id, policy=ext.policy, now=at,
                ip_address=client_ip(), user_agent=_user_agent())
    except sessions.SessionEnded as ended:
        _forget(state, ended.reason)
    except sessions.SessionNotFound:
        _forget(state, None)
    except throttle.Throttled:
        _forget(state, None)  # the 429 clears the unknown value, so signing in again works
        raise
    except sessions.StaleHandle:
        # Replaced by a re-key moments ago, in a request already in flight: refuse it, but
        # leave the cookies alone so the newer value the browser holds is not wiped.
        state.principal = None


def _unknown_session_guard(ext: Gatehouse) -> list[throttle.Limit]:
    return [throttle.Limit(f"session-ip:{client_ip()}", ext.unknown_session_limit,
                           ext.unknown_session_window)]


def _verified_claims(ext: Gatehouse, token: str, at: float) -> tokens.AccessClaims | None:
    if not token:
        return None
    try:
        return ext.cache.decode(ext.keys, token, issuer=ISSUER, now=at)
    except tokens.InvalidAccessToken:
        return None


def _live(claims: tokens.AccessClaims, ext: Gatehouse, at: float) -> sessions.Principal | None:
    """The token's session, if it is live; None for a token that predates a re-key, which is
    then treated like an expired one (the session cookie renews it, or nothing does)."""
    try:
        principal = sessions.check_live(claims.session_id, policy=ext.policy, now=at,
                                        token_generation=claims.generation,
                                        ip_address=client_ip(), user_agent=_user_agent())
    except sessions.StaleAccessToken:
        return None
    if not tokens.hashes_equal(principal.user_public_id, claims.user_id):
        raise sessions.SessionNotFound()
    return principal


def _forget(state: AuthState, reason: str | None) -> None:
    if reason == sessions.SIGNED_OUT:
        # Signed out (or signed in anew) from this very browser: a request that was in flight
        # meanwhile must not clear or overwrite the cookies that the newer response set.
        state.principal = None
        return
    state.principal, state.issued, state.clear = None, None, True
    state.ended_reason = reason
    if reason:  # shown on the next page, even when a script's JSON call found out first
        flash(ENDED_MESSAGES.get(reason, "Your session has ended."), "warning")


def save_auth(response: Response) -> Response:
    state: AuthState | None = g.get("auth")
    if state is None:
        return response
    if state.clear:
        _unset_cookies(response)
    elif state.issued is not None:
        _set_cookies(response, state.issued)
    if state.signed_in or state.clear or state.issued is not None:
        _make_private(response)
    return response


def _make_private(response: Response) -> None:
    """``Cache-Control: no-store`` and ``Vary: Cookie``: what one person's responses carry.

    One pass over the headers: ``Headers.get`` of an absent name raises and catches a werkzeug
    HTTP exception inside, and ``response.vary`` re-parses and re-serialises the header; the
    two cost about as much as the rest of save_auth.
    """
    headers = response.headers
    vary = [value for name, value in headers.items() if name.lower() == "vary"]
    headers.set("Cache-Control", "no-store")
    if not vary:
        headers.add("Vary", "Cookie")
    elif "cookie" not in (v.strip().lower() for value in vary for v in value.split(",")):
        headers.set("Vary", f"{', '.join(vary)}, Cookie")


def _cookie_attributes() -> dict[str, Any]:
    # One place for every attribute, so that a deletion always matches what was set.
    return {"path": "/", "domain": None, "secure": True, "httponly": True, "samesite": "Lax"}


def _set_cookies(response: Response, issued: sessions.Issued) -> None:
    response.set_cookie(ACCESS_COOKIE, issued.access_token, max_age=issued.access_max_age,
                        **_cookie_attributes())
    response.set_cookie(SESSION_COOKIE, issued.handle, max_age=issued.handle_max_age,
                        **_cookie_attributes())


def _unset_cookies(response: Response) -> None:
    for name in (ACCESS_COOKIE, SESSION_COOKIE):
        response.delete_cookie(name, **_cookie_attributes())


# --- the interface for views -------------------------------------------------------------


def sign_in(user: User) -> None:
    """Start a new session for ``user``; whatever this browser held before is discarded."""
    state, ext, at = auth(), gatehouse(), now()
    if state.principal is not None:
        sessions.revoke(state.principal.session_public_id, user_id=state.principal.user_id,
                        reason=sessions.SIGNED_OUT, now=at, ip_address=client_ip())
    session.clear()  # a planted CSRF secret or flash does not survive sign-in
    state.issued = sessions.start(user, keys=ext.keys, policy=ext.policy, now=at,
                                  user_agent=_user_agent(),
                                  ip_address=client_ip())
    state.clear, state.principal = False, None


def _user_agent() -> str:
    """Untrusted text, stored without control characters (PostgreSQL refuses NUL)."""
    agent = request.environ.get("HTTP_USER_AGENT", "")[:512]
    # Every request compares it with the stored one: the common case costs one C call.
    return agent if agent.isprintable() else "".join(c for c in agent if c.isprintable())


def sign_out() -> None:
    """End this browser's session and clear its cookies; nothing is re-set on this response."""
    state = auth()
    if state.principal is not None:
        sessions.revoke(state.principal.session_public_id, user_id=state.principal.user_id,
                        reason=sessions.SIGNED_OUT, now=now(), ip_address=client_ip())
    session.clear()
    state.principal, state.issued, state.clear = None, None, True


def end_other_sessions(reason: str) -> int:
    """End every other session of the signed-in person and re-key this one, so that a copy of
    this browser's cookies is cut off too. Returns how many sessions were ended."""
    state, ext, at = auth(), gatehouse(), now()
    ended = sessions.revoke_all(state.principal.user_id, reason=reason, now=at,
                                keep=state.principal.session_id, ip_address=client_ip(),
                                actor=state.principal.session_public_id)
    state.issued = sessions.rekey(state.principal, keys=ext.keys, policy=ext.policy, now=at)
    return ended


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pages redirect to the sign-in page with ``next``; JSON answers 401, never a redirect."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if auth().signed_in:
            return view(*args, **kwargs)
        if request.path.startswith("/api/"):
            return jsonify(error="not_authenticated", reason=auth().ended_reason), 401
        return redirect(f"/login?next={quote(request.full_path.rstrip('?'), safe='/')}")

    return wrapped
