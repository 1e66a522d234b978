"""Flask's signed session cookie, verified and decoded only when a request first touches it.

Gatehouse keeps only the CSRF secret and flashed messages there. JSON calls never read either
(every HTML page does: the layout shows flashed messages), yet Flask verifies the cookie's
signature and decodes it on every request: about a fifth of the cost of an authenticated JSON
call. Behaviour is Flask's own in every other respect; only *when* the cookie is read changes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class LazySession(SecureCookieSession):
    """A ``SecureCookieSession`` whose content is loaded by the first method that needs it."""

    def __init__(self, load: Callable[[], Any]) -> None:
        super().__init__()
        self._load: Callable[[], Any] | None = load

    @property
    def loaded(self) -> bool:
        return self._load is None

    def _ensure_loaded(self) -> None:
        if self._load is not None:
            load, self._load = self._load, None
            dict.update(self, load() or {})  # dict's own update: loading is not a change


def _loading(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: LazySession, *args: Any, **kwargs: Any) -> Any:
        self._ensure_loaded()
        return method(self, *args, **kwargs)

    return wrapper


# Every way of reading or changing the mapping goes through the loader first.
for _name in ("__getitem__", "__setitem__", "__delitem__", "__contains__", "__iter__",
              "__reversed__", "__len__", "__eq__", "__ne__", "__repr__", "__or__", "__ior__",
              "get", "setdefault", "pop", "popitem", "clear", "update", "keys", "values",
              "items", "copy"):
    setattr(LazySession, _name, _loading(getattr(SecureCookieSession, _name)))


class LazyCookieSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        parent = super().open_session
        return LazySession(lambda: parent(app, request))

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if isinstance(session, LazySession) and not session.loaded:
            return  # never read, so never changed, and the response does not vary on it
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    app.session_interface = LazyCookieSessionInterface()
