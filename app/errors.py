"""Exceptions and HTTP errors mapped to responses in one place: HTML for pages, JSON for /api/.

Every JSON error has one shape: ``{"error": "<machine code>", "message": "<human sentence>"}``,
plus ``"reason"`` when the caller's session has just ended (one of ``session_rules``' reasons).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadHost, Forbidden, HTTPException

from app import audit, links, middleware, settings, templating, users, words
from app.db import UNAVAILABLE
from app.liveness import RevocationUnconfirmed
from app.security import CrossSiteRequest, is_api_request
from app.sessions import rules
from app.throttle import Throttled

log = logging.getLogger("gatehouse.errors")


class ReauthenticationRequired(Forbidden):
    """A sensitive JSON call without the signed-in person's right password."""

    description = "Enter your password to confirm it's you."


@dataclass(frozen=True)
class Kind:
    code: str  # the JSON ``error``
    title: str  # the page's heading
    message: str  # the JSON ``message`` when the handler gives none


KINDS = {
    400: Kind("bad_request", "Bad request", "The request could not be understood."),
    401: Kind("not_authenticated", "Sign in first", "Sign in first."),
    403: Kind("forbidden", "Forbidden", "This request is not allowed."),
    404: Kind("not_found", "Not found", "There is nothing here."),
    405: Kind("method_not_allowed", "Method not allowed",
              "This address does not accept that method."),
    413: Kind("request_too_large", "Request too large", "The request body is too large."),
    429: Kind("too_many_attempts", "Too many attempts",
              "Too many attempts. Wait a little and try again."),  # with the wait, in words
    500: Kind("internal_error", "Something went wrong", "Something went wrong on our side."),
    503: Kind("unavailable", "Temporarily unavailable",
              "The service is briefly unavailable. Your session is safe; please try again in "
              "a moment."),
}


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(middleware.NotSignedIn, not_signed_in)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(CrossSiteRequest, cross_site)
    app.register_error_handler(ReauthenticationRequired, reauthentication_required)
    app.register_error_handler(rules.SessionNotFound, lambda e: render_error(404))
    app.register_error_handler(Throttled, throttled)
    app.register_error_handler(links.LinkError, link_problem)
    app.register_error_handler(users.PasswordMustBeReset, password_must_be_reset)
    for exc in (*UNAVAILABLE, RevocationUnconfirmed):
        app.register_error_handler(exc, database_unavailable)
    app.register_error_handler(Exception, unexpected)


def render_error(status: int, message: str | None = None, *, code: str | None = None,
                 link: tuple[str, str] | None = None, **extra: Any) -> tuple[Any, int]:
    """The error as JSON for /api/, else as a page; ``link`` (address, words) is where the
    page offers to go instead of the start page, and ``extra`` goes into both."""
    kind = KINDS.get(status, Kind("error", "Error", "The request failed."))
    # Refused before the middleware opened (the schema check's 503, or a failure inside
    # open_auth itself): the page shows someone anonymous.
    g.setdefault("auth", middleware.AuthState())
    if is_api_request():
        return jsonify(error=code or kind.code, message=message or kind.message, **extra), status
    if isinstance(request.routing_exception, BadHost):
        # A Host header that is no host name: no URL can be built for this request, and the
        # page links its stylesheet by URL. Whatever was refused, the answer is plain text.
        return Response("Bad request: invalid Host header.\n", mimetype="text/plain"), 400
    return render_template("error.html", status=status, title=kind.title, message=message,
                           link=link, **extra), status


def http_error(error: HTTPException) -> tuple[Any, int]:
    return render_error(error.code or 500, error.description if error.code in (403,) else None)


def not_signed_in(error: middleware.NotSignedIn) -> tuple[Any, int]:
    if error.reason:
        return render_error(401, words.not_signed_in(error.reason), reason=error.reason)
    return render_error(401)


def reauthentication_required(error: ReauthenticationRequired) -> tuple[Any, int]:
    return render_error(403, error.description, code="reauthentication_required")


def csrf_error(error: CSRFError) -> tuple[Any, int]:
    _record(audit.CSRF_FAILED, detail=f"{request.method} {request.path}")
    if templating.insecure_origin():  # the real reason: the browser kept no cookie at all
        return render_error(400, templating.insecure_origin_words())
    return render_error(400, "The form had expired or did not come from this site. "
                             "Please try again.")


def cross_site(error: CrossSiteRequest) -> tuple[Any, int]:
    _record(audit.CSRF_FAILED, detail=f"{request.method} {request.path}: {error.description}")
    return render_error(403, error.description, code="cross_site")


def throttled(error: Throttled) -> tuple[Any, int, dict[str, str]]:
    _record(audit.THROTTLED, detail=request.path)
    wait = f"Try again in {words.in_words(error.retry_after)}."
    if is_api_request():
        body, status = render_error(429, f"Too many attempts. {wait}")
    else:
        body, status = render_error(
            429, f"To keep accounts safe, Gatehouse pauses after too many tries. {wait}",
            link=way_back())
    return body, status, {"Retry-After": str(error.retry_after)}


FORMS_OF_THE_SIGNED_OUT = {"auth.login": "Back to sign in",
                           "auth.register": "Back to creating an account",
                           "auth.forgot": "Back to resetting your password"}


def way_back() -> tuple[str, str]:
    """The form that was refused, when it is one a signed-out person fills in; else the
    account (signed in) or the sign-in page."""
    endpoint = request.endpoint or ""
    if endpoint in FORMS_OF_THE_SIGNED_OUT:
        following = request.form.get("next") if endpoint == "auth.login" else None
        target = url_for(endpoint, next=following) if following else url_for(endpoint)
        return target, FORMS_OF_THE_SIGNED_OUT[endpoint]
    state = g.get("auth")
    if state is not None and state.signed_in:
        return url_for("account.account"), "Back to your account"
    return url_for("auth.login"), "Back to sign in"


def database_unavailable(error: Exception) -> tuple[Any, int]:
    """The database does not answer, or a revocation could not be shown to hold on every
    worker: nothing is lost, try again."""
    log.error("database unavailable: %s", type(error).__name__)
    return render_error(503, KINDS[503].message)


def unexpected(error: Exception) -> tuple[Any, int]:
    reference = secrets.token_hex(6)
    log.exception("unhandled error, reference %s", reference)
    return render_error(500, f"{KINDS[500].message} Reference {reference}.")


def _record(kind: str, detail: str) -> None:
    """Record an event about a refused request; a database outage must not turn it into a 500."""
    state = g.get("auth")
    user = state.principal.user_id if state and state.principal else None
    try:
        audit.record(kind, user=user, ip=middleware.client_ip(), now=settings.now(),
                     detail=detail)
    except UNAVAILABLE:
        log.warning("could not record %s event: database unavailable", kind)


def password_must_be_reset(error: users.PasswordMustBeReset) -> tuple[Any, int]:
    return render_error(403, words.PASSWORD_MUST_BE_RESET, code="password_must_be_reset",
                        link=(url_for("auth.forgot"), "Reset the password"))


def link_problem(error: links.LinkError) -> tuple[str, int]:
    """A used, expired or altered link from a mail says which, and offers a new one (these
    are pages a person opened from a mail: never JSON)."""
    status = 400 if type(error) is links.LinkError else 410
    return render_template("auth/link_problem.html", message=error.message,
                           endpoint=request.endpoint), status
