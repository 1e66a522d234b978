"""How a request carries its credential, and how a response hands a new one back.

The middleware reads every credential through a carrier and writes every new one through the
same carrier, so it never touches a cookie or a header itself. Today there is one: the
browser's cookies. Each carrier's ``deliver`` and ``clear`` are one symmetric pair, with every
attribute from the settings, so that a deletion always matches what was set (``drop_access``
removes the access credential alone, for a session that renews it only with a key's proof).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Request, Response

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
