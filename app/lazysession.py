"""Flask's signed session cookie, verified and decoded only when a request first reads or
writes it.

Gatehouse keeps only the CSRF secret and flashed messages there. JSON calls never read either
(every HTML page does: the layout shows flashed messages), yet Flask verifies the cookie's
signature and decodes it on every request. ``python -m bench.shims`` (callgrind) counts
1,005,303 instructions per ``GET /api/me`` without this and 772,313 with it: 23 % fewer
(``bench/RESULTS.md``, "Speed shims"). Behaviour is Flask's own in every other respect; only
*when* the cookie is read changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin


class LazySession(SessionMixin):
    """A mapping (``SessionMixin`` is a ``MutableMapping``) over the real
    ``SecureCookieSession``, which is loaded by the first use.

    Only the five methods a ``MutableMapping`` is built on (and ``clear``, which Flask's own
    session counts as a change even when empty) reach the real session; the rest derive from
    them. Flask's request context sets ``accessed`` on this object, as on any session.
    """

    def __init__(self, load: Callable[[], SecureCookieSession | None]) -> None:
        self._load: Callable[[], SecureCookieSession | None] | None = load
        self._real = SecureCookieSession()

    @property
    def loaded(self) -> bool:
        return self._load is None

    @property
    def real(self) -> SecureCookieSession:
        if self._load is not None:
            load, self._load = self._load, None
            self._real = load() or self._real
        return self._real

    @property
    def modified(self) -> bool:
        return self.loaded and self._real.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self.real.modified = value

    def __getitem__(self, key: str) -> Any:
        return self.real[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.real[key] = value

    def __delitem__(self, key: str) -> None:
        del self.real[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.real)

    def __len__(self) -> int:
        return len(self.real)

    def clear(self) -> None:
        self.real.clear()


class LazyCookieSessionInterface(SecureCookieSessionInterface):
    # Flask's SessionInterface takes any SessionMixin; its cookie subclass's annotation is
    # narrower than what its own save_session accepts.
    def open_session(  # type: ignore[override]
            self, app: Flask, request: Request) -> SessionMixin | None:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        parent = super().open_session
        return LazySession(lambda: parent(app, request))

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if isinstance(session, LazySession):
            if not session.loaded:
                return  # never read, so never changed, and the response does not vary on it
            session.real.accessed = session.accessed
            session = session.real
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    app.session_interface = LazyCookieSessionInterface()
