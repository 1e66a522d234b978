"""Browser-facing defences: CSRF tokens, a same-origin check, security headers, proxy trust."""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import Forbidden
from werkzeug.middleware.proxy_fix import ProxyFix

csrf = CSRFProtect()

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_HEADER = "X-Gatehouse-Request"  # not CORS-safelisted: a cross-site call needs a preflight

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
])
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class CrossSiteRequest(Forbidden):
    """An unsafe request that did not come from this site's own pages or scripts."""


def init_app(app: Flask) -> None:
    hops = app.config["GATEHOUSE_TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    # flask-wtf's own hook looks up the view's exemptions on every request, GETs included
    # (about 7 µs); check_unsafe_request calls the same ``protect`` for unsafe methods only.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    if not app.config["WTF_CSRF_METHODS"] <= UNSAFE_METHODS:
        raise ValueError("WTF_CSRF_METHODS may name only methods check_unsafe_request sees")
    app.before_request(check_unsafe_request)
    app.after_request(add_headers)


def check_unsafe_request() -> None:
    """Every unsafe request needs a valid CSRF token (outside exempt views and blueprints) and
    must come from this origin. Safe methods change nothing, so they skip both checks."""
    if request.method not in UNSAFE_METHODS:
        return
    if current_app.config["WTF_CSRF_ENABLED"]:
        csrf.protect(apply_exemptions=True)  # flask-wtf's check, exemptions honoured
    refuse_cross_site()


def refuse_cross_site() -> None:
    """Defence in depth behind the CSRF token: unsafe requests must come from this origin.

    JSON calls from the site's own scripts carry no form token, so they need the custom header.
    """
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise CrossSiteRequest("Cross-site request refused.")
    origin = request.headers.get("Origin")
    if origin and origin != request.host_url.rstrip("/"):
        raise CrossSiteRequest("Cross-origin request refused.")
    if request.path.startswith("/api/") and request.headers.get(JSON_HEADER) != "1":
        raise CrossSiteRequest(f"Missing {JSON_HEADER} header.")


def add_headers(response: Response) -> Response:
    # Every response pays for this: one pass over the headers already set, rather than a scan
    # of them per header (setdefault), keeps it at a few microseconds.
    headers = response.headers
    present = set(headers.keys(lower=True))
    headers.extend([(name, value) for name, value in HEADERS.items()
                    if name.lower() not in present])
    if request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    cookie_or_page = response.mimetype == "text/html" or "set-cookie" in present
    if cookie_or_page and "cache-control" not in present:
        headers["Cache-Control"] = "no-store"
    return response
