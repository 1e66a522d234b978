"""Exceptions and HTTP errors mapped to responses in one place: HTML for pages, JSON for /api/."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadHost, HTTPException

from app import audit, middleware, sessions
from app.db import UNAVAILABLE
from app.security import CrossSiteRequest
from app.throttle import Throttled

log = logging.getLogger("gatehouse.errors")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(CrossSiteRequest, cross_site)
    app.register_error_handler(sessions.SessionNotFound, lambda e: render_error(404))
    app.register_error_handler(Throttled, throttled)
    for exc in UNAVAILABLE:
        app.register_error_handler(exc, database_unavailable)
    app.register_error_handler(Exception, unexpected)


def render_error(status: int, message: str | None = None, **extra):
    titles = {400: "Bad request", 403: "Forbidden", 404: "Not found",
              405: "Method not allowed", 413: "Request too large", 429: "Too many attempts",
              500: "Something went wrong", 503: "Temporarily unavailable"}
    title = titles.get(status, "Error")
    # Refused before the middleware ran (CSRF, cross-site): the page shows someone anonymous.
    g.setdefault("auth", middleware.AuthState())
    if request.path.startswith("/api/"):
        return jsonify(error=title, message=message, **extra), status
    if isinstance(request.routing_exception, BadHost):
        # A Host header that is no host name: no URL can be built for this request, and the
        # page links its stylesheet by URL. Whatever was refused, the answer is plain text.
        return "Bad request: invalid Host header.\n", 400, {"Content-Type": "text/plain"}
    return render_template("error.html", status=status, title=title, message=message,
                           **extra), status


def http_error(error: HTTPException):
    return render_error(error.code or 500, error.description if error.code in (403,) else None)


def csrf_error(error: CSRFError):
    _record("csrf_failed", detail=f"{request.method} {request.path}")
    return render_error(400, "The form had expired or did not come from this site. "
                             "Please try again.")


def cross_site(error: CrossSiteRequest):
    _record("csrf_failed", detail=f"{request.method} {request.path}: {error.description}")
    return render_error(403, error.description)


def throttled(error: Throttled):
    _record("throttled", detail=request.path)
    body, status = render_error(429, "Too many attempts. Wait a little and try again.")
    return body, status, {"Retry-After": str(error.retry_after)}


def database_unavailable(error: Exception):
    log.error("database unavailable: %s", type(error).__name__)
    return render_error(503, "The service is briefly unavailable. Your session is safe; "
                             "please try again in a moment.")


def unexpected(error: Exception):
    reference = secrets.token_hex(6)
    log.exception("unhandled error, reference %s", reference)
    return render_error(500, f"Reference {reference}.")


def _record(kind: str, detail: str) -> None:
    """Record an event about a refused request; a database outage must not turn it into a 500."""
    state = g.get("auth")
    user = state.principal.user_id if state and state.principal else None
    try:
        audit.record(kind, user=user, ip=middleware.client_ip(), now=middleware.now(),
                     detail=detail)
    except UNAVAILABLE:
        log.warning("could not record %s event: database unavailable", kind)
