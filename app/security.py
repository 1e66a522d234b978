"""Browser-facing defences: CSRF tokens, a same-origin check, security headers, proxy trust."""

from __future__ import annotations

from flask import Flask, Response, request
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
    csrf.init_app(app)
    app.before_request(refuse_cross_site)
    app.after_request(add_headers)


def refuse_cross_site() -> None:
    """Defence in depth behind the CSRF token: unsafe requests must come from this origin.

    JSON calls from the site's own scripts carry no form token, so they need the custom header.
    """
    if request.method not in UNSAFE_METHODS:
        return
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
    # Pages always; any response that sets or clears an auth cookie, or is authenticated, gets
    # no-store from middleware.save_auth (which runs after this hook).
    if response.mimetype == "text/html" and "cache-control" not in present:
        headers["Cache-Control"] = "no-store"
    return response
