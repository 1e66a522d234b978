"""Browser-facing defences: CSRF tokens, a same-origin check, security headers, proxy trust."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, g, request
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import BadRequest, Forbidden
from werkzeug.middleware.proxy_fix import ProxyFix

from app import settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

csrf = CSRFProtect()
log = logging.getLogger("gatehouse.security")

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
HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
_HEADER_LIST = [(name.lower(), (name, value)) for name, value in HEADERS.items()]


PRIVATE = "gatehouse.private"  # environ key: this response belongs to one person


def is_api_request() -> bool:
    """A call from the site's own scripts: JSON in, JSON out, 401 rather than a redirect."""
    return request.path.startswith("/api/")


def mark_private() -> None:
    """This response is one person's: ``secure_headers`` gives it ``Cache-Control: no-store``
    (whatever the view chose) and ``Vary: Cookie``."""
    request.environ[PRIVATE] = True


class BearerWithCookies(BadRequest):
    """An ``Authorization`` header and sign-in cookies on one request: refused, never
    combined."""

    description = "Send either an Authorization header or cookies, not both."


class CrossSiteRequest(Forbidden):
    """An unsafe request that did not come from this site's own pages or scripts."""


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a body nested deeper than Python can recurse ("[" * 60_000) is
    malformed input like any other: ``get_json`` answers 400 for it, or None when silent,
    instead of letting a RecursionError become a 500."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def init_app(app: Flask) -> None:
    app.json = BoundedJSONProvider(app)
    # ProxyFix goes outside, so that the scheme the headers see is the one the client used.
    # Flask's documented way to wrap its WSGI app, which mypy sees as assigning to a method.
    app.wsgi_app = with_security_headers(app.wsgi_app)  # type: ignore[method-assign,assignment]
    hops = settings.of(app).trusted_proxies
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    else:
        app.wsgi_app = warn_of_untrusted_proxy(  # type: ignore[method-assign,assignment]
            app.wsgi_app)
    # flask-wtf's own hook looks up the view's exemptions on every request, GETs included;
    # check_unsafe_request calls the same ``protect`` for unsafe methods only (the saving is
    # in bench/RESULTS.md).
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    if not app.config["WTF_CSRF_METHODS"] <= UNSAFE_METHODS:
        raise ValueError("WTF_CSRF_METHODS may name only methods check_unsafe_request sees")
    app.before_request(check_unsafe_request)


def check_unsafe_request() -> None:
    """Every unsafe request needs a valid CSRF token (outside exempt views and blueprints) and
    must come from this origin. Safe methods change nothing, so they skip both checks."""
    if request.method not in UNSAFE_METHODS:
        return
    auth = g.get("auth")
    if auth is not None and (auth.bearer or auth.credential_free):
        # An app's call carries no ambient credential for another site to ride on, and a
        # view that reads no cookie has no session to ride on.
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
    if is_api_request() and request.headers.get(JSON_HEADER) != "1":
        raise CrossSiteRequest(f"Missing {JSON_HEADER} header.")


def warn_of_untrusted_proxy(wsgi_app: WSGIApplication) -> WSGIApplication:
    """Log a warning, once per worker, when a request carries ``X-Forwarded-For`` that no
    setting trusts. Behind a proxy with ``GATEHOUSE_TRUSTED_PROXIES=0`` every client has the
    proxy's address, so one client's failures would throttle sign-in for everyone."""
    warned = False

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        nonlocal warned
        if not warned and "HTTP_X_FORWARDED_FOR" in environ:
            warned = True
            log.warning(
                "A request from %s carried X-Forwarded-For, which GATEHOUSE_TRUSTED_PROXIES=0 "
                "ignores: if a proxy of yours sets it, every client now shares that proxy's "
                "address and its per-address limits. Set GATEHOUSE_TRUSTED_PROXIES to the "
                "number of proxies in front.", environ.get("REMOTE_ADDR", "?"))
        return wsgi_app(environ, start_response)

    return app


def with_security_headers(wsgi_app: WSGIApplication) -> WSGIApplication:
    """Wrap the WSGI app so that every response it sends carries the security headers: pages,
    JSON, errors, static files, and anything else that reaches ``start_response``.

    A 204 loses the ``Content-Type`` Flask gives every response: it has no content.

    Done at the WSGI edge rather than in an ``after_request`` hook because there the headers are
    a plain list, one pass over which costs a fraction of what werkzeug's ``Headers`` take to
    set and validate them one by one, on every response (figures in bench/RESULTS.md). The
    cache policy of one person's responses is applied here too, in the same pass.
    """

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        https = environ["wsgi.url_scheme"] == "https"  # what request.is_secure reads

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            private = environ.get(PRIVATE, False)
            if status.startswith("204"):  # no content: nothing for a Content-Type to describe
                headers = [(n, v) for n, v in headers if n.lower() != "content-type"]
            return start_response(status, secure_headers(headers, https, private), exc_info)

        return wsgi_app(environ, start)

    return app


def secure_headers(headers: list[tuple[str, str]], https: bool,
                   private: bool = False) -> list[tuple[str, str]]:
    """``headers`` plus each security header they lack; HSTS over HTTPS; the cache policy:

    * one person's response (``private``): ``Cache-Control: no-store`` whatever the app chose,
      and ``Cookie`` in ``Vary``;
    * otherwise ``no-store`` on pages and on responses that set a cookie, unless the app chose
      a Cache-Control.
    """
    present, content_type, vary = set(), "", []
    for name, value in headers:
        name = name.lower()
        present.add(name)
        if name == "content-type":
            content_type = value
        elif name == "vary":
            vary.append(value)
    added = [header for lower, header in _HEADER_LIST if lower not in present]
    if https and "strict-transport-security" not in present:
        added.append(HSTS)
    if private:
        return _private(headers, vary) + added
    is_page = content_type.split(";", 1)[0].strip().lower() == "text/html"
    if (is_page or "set-cookie" in present) and "cache-control" not in present:
        added.append(("Cache-Control", "no-store"))
    return headers + added


def _private(headers: list[tuple[str, str]], vary: list[str]) -> list[tuple[str, str]]:
    if "cookie" in (v.strip().lower() for value in vary for v in value.split(",")):
        varies = [("Vary", ", ".join(vary))] if vary else []
    else:
        varies = [("Vary", ", ".join([*vary, "Cookie"]))]
    kept = [(n, v) for n, v in headers if n.lower() not in ("cache-control", "vary")]
    return kept + [("Cache-Control", "no-store"), *varies]
