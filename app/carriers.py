"""How a request carries its credential, and how a response hands a new one back.

The middleware reads every credential through a carrier and writes every new one through the
same carrier, so it never touches a cookie or a header itself: the browser's cookies, or an
app's ``Authorization`` header (``Bearer``, or ``DPoP`` beside a proof; an app renews its
tokens at ``/oauth/token``, so nothing is ever written back to it). Each carrier's
``deliver`` and ``clear`` are one symmetric pair, with every attribute from the settings, so
that a deletion always matches what was set (``drop_access`` removes the access credential
alone, for a session that renews it only with a key's proof).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from flask import Request, Response
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.sansio.http import parse_cookie
from werkzeug.utils import cached_property

from app.sessions.rules import Issued

ACCESS_COOKIE = "__Host-access"
SESSION_COOKIE = "__Host-session"
# Identifies the browser, not the person: set at its first sign-in, kept a year, through
# sign-outs. It authenticates nothing on its own (see devices.py).
DEVICE_COOKIE = "__Host-device"


@dataclass(frozen=True)
class Presented:
    """What a request presents: an access token, and the session value that may renew it."""

    access_token: str = ""
    handle: str = ""


class Carrier(Protocol):
    def presented(self, request: Request) -> Presented: ...
    def deliver(self, response: Response, issued: Issued) -> None: ...
    def clear(self, response: Response) -> None: ...
    def drop_access(self, response: Response) -> None: ...


class BrowserCookies:
    """The browser's ``__Host-`` cookies: HttpOnly, Secure, SameSite=Lax, Path=/, no Domain.
    The access cookie never outlives its token, the session cookie never outlives the
    session."""

    def __init__(self, attributes: Mapping[str, Any]) -> None:
        self.attributes = attributes

    def presented(self, request: Request) -> Presented:
        cookies = request.cookies
        return Presented(cookies.get(ACCESS_COOKIE, ""), cookies.get(SESSION_COOKIE, ""))

    def deliver(self, response: Response, issued: Issued) -> None:
        response.set_cookie(ACCESS_COOKIE, issued.access_token, max_age=issued.access_max_age,
                            **self.attributes)
        response.set_cookie(SESSION_COOKIE, issued.handle, max_age=issued.handle_max_age,
                            **self.attributes)

    def clear(self, response: Response) -> None:
        for name in (ACCESS_COOKIE, SESSION_COOKIE):
            response.delete_cookie(name, **self.attributes)

    def drop_access(self, response: Response) -> None:
        """Remove the access cookie alone: a DBSC browser missing it renews it at
        ``/dbsc/refresh`` before its next request, with a proof of its key."""
        response.delete_cookie(ACCESS_COOKIE, **self.attributes)

    def device(self, request: Request) -> str:
        return request.cookies.get(DEVICE_COOKIE, "")

    def remember_device(self, response: Response, device_id: str, max_age: int) -> None:
        response.set_cookie(DEVICE_COOKIE, device_id, max_age=max_age, **self.attributes)


def app_credential(request: Request) -> tuple[str, str] | None:
    """The scheme (``bearer`` or ``dpop``, RFC 6750 and RFC 9449) and token of an app's
    ``Authorization`` header; None without one. Another scheme is no app's (a browser behind
    a proxy's HTTP authentication sends ``Basic`` with every call): ignored."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    scheme = scheme.lower()
    return (scheme, token.strip()) if scheme in ("bearer", "dpop") else None


class AppHeader:
    """An app's access token in the ``Authorization`` header, on ``/api/`` only."""

    def presented(self, request: Request) -> Presented:
        found = app_credential(request)
        return Presented(found[1] if found else "", "")

    def deliver(self, response: Response, issued: Issued) -> None:
        pass  # an app's tokens come from the token endpoint, never from an API response

    def clear(self, response: Response) -> None:
        pass


class CookieRequest(Request):
    """Flask's request, with the cookies found without a scan of every request header.

    werkzeug joins ``headers.getlist("Cookie")``, which walks the whole WSGI environ; a WSGI
    server puts every Cookie header into the one ``HTTP_COOKIE`` key (PEP 3333), so reading
    that key gives the same string. Parsing is werkzeug's own (``python -m bench.shims``
    counts what it saves).
    """

    @cached_property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        # werkzeug's own Request.cookies makes the same call with the same storage class.
        return cast(ImmutableMultiDict[str, str], parse_cookie(
            self.environ.get("HTTP_COOKIE", ""), cls=self.dict_storage_class))
