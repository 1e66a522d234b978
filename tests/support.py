"""What the tests share: constants, a controllable clock, browsers and the small actions that
drive the real pages with real CSRF tokens. Fixtures are in conftest.py."""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup

from app import tokens
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.db import database
from app.models import ALL, LoginSession
from app.settings import ISSUER

PASSWORD = "correct horse battery staple"
SECRET = "test-secret-key-that-is-long-enough-0123456789"
CHEAP_ARGON2 = {  # argon2.profiles.CHEAPEST: tests only
    "GATEHOUSE_ARGON2_TIME_COST": 1, "GATEHOUSE_ARGON2_MEMORY_KIB": 8,
    "GATEHOUSE_ARGON2_PARALLELISM": 1,
}
PUBLIC_URL = "https://gatehouse.test"  # the mail tests' GATEHOUSE_PUBLIC_URL
UA_FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
UA_PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")


class Clock:
    """The app's time source, moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql")


def on_postgres() -> bool:
    """Whether this run of the suite is on PostgreSQL (TEST_DATABASE_URL)."""
    return is_postgres(os.environ.get("TEST_DATABASE_URL", ""))


@functools.cache
def unreachable(url: str) -> str | None:
    """Why the PostgreSQL database at ``url`` cannot be used, or None when it answers."""
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except psycopg2.Error as exc:
        return f"PostgreSQL at TEST_DATABASE_URL is not reachable ({str(exc).strip()})"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason`` on a developer's machine; in CI (CI=true) nothing may be skipped."""
    if IN_CI:
        pytest.fail(f"{reason}; CI must run it", pytrace=False)
    pytest.skip(reason)


def reset_database() -> None:
    """Empty every table, so that a shared PostgreSQL database starts each test clean."""
    with database.connection_context():
        database.drop_tables(ALL, safe=True)
    database.close_all()


def browser(app, user_agent: str = UA_FIREFOX):
    """A test client that presents itself as one browser (its own cookie jar)."""
    client = app.test_client()
    client.environ_base.update(HTTP_USER_AGENT=user_agent, REMOTE_ADDR="203.0.113.7")
    return client


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def csrf_token(response) -> str:
    return csrf_token_in(response.get_data(as_text=True))


def csrf_token_in(html: str | bytes) -> str:
    """The CSRF token of the form in ``html`` (one place that knows where a page keeps it)."""
    field = BeautifulSoup(html, "html.parser").find("input", attrs={"name": "csrf_token"})
    assert field is not None, "the page has no CSRF token"
    return field["value"]


def submit(client, path: str, data: dict, *, form_page: str | None = None, **kwargs):
    """Fetch ``form_page`` (default ``path``), take its CSRF token and post ``data`` to path."""
    token = csrf_token(client.get(form_page or path))
    return client.post(path, data={"csrf_token": token, **data}, **kwargs)


def register(client, email: str = "ada@example.com", password: str = PASSWORD):
    return submit(client, "/register", {"email": email, "password": password})


def login(client, email: str = "ada@example.com", password: str = PASSWORD, *,
          extra: dict | None = None, **kwargs):
    return submit(client, "/login", {"email": email, "password": password, **(extra or {})},
                  **kwargs)


def signed_up(client, email: str = "ada@example.com"):
    register(client, email)
    response = login(client, email)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def cookie(client, name: str) -> str | None:
    found = client.get_cookie(name)
    return found.value if found else None


@dataclass
class Cookies:
    """One browser's auth cookies, to copy into another or present again later."""

    access: str | None
    session: str | None

    @classmethod
    def of(cls, client) -> Cookies:
        return cls(cookie(client, ACCESS_COOKIE), cookie(client, SESSION_COOKIE))

    def put(self, client) -> None:
        for name, value in ((ACCESS_COOKIE, self.access), (SESSION_COOKIE, self.session)):
            if value is None:
                client.delete_cookie(name)
            else:
                client.set_cookie(name, value)


def only_session() -> LoginSession:
    (session,) = LoginSession.select()
    return session


def auth_cookies_set(response) -> list[str]:
    """The Set-Cookie headers of a response that touch this browser's sign-in cookies."""
    return [h for h in response.headers.getlist("Set-Cookie")
            if h.startswith((ACCESS_COOKIE, SESSION_COOKIE, "__Host-flask"))]


def expired_access_token(user_id: str, session_id: str) -> str:
    """An access token that expired a minute ago (beyond the verifier's leeway), signed with
    the test key exactly as the app signs: the cookie a browser holds after a minute away,
    without waiting for one to expire."""
    from app import keystore

    issued = int(time.time()) - 120
    keys = tokens.Keys.derive(SECRET, keystore.StoredRing([SECRET], 300))
    return tokens.encode_access(keys, issuer=ISSUER, user_id=user_id,
                                session_id=session_id, generation=0, now=issued,
                                expires_at=issued + 60)


def deaf_to_revocations(follower, payload: str) -> tuple[int, int]:
    """``PostgresFollower.receive`` for a worker broken in one place: it takes in each change a
    revocation waits for without applying or confirming it (counted as received, so nothing
    it checks on its own shows a change missing)."""
    from app.liveness import listener
    from app.liveness.listener import PostgresFollower

    change_id, _, _, waiting = listener.parse(payload)
    if not waiting:
        return PostgresFollower.receive(follower, payload)
    follower.last = max(follower.last, change_id)
    return change_id, 0


def fixed_keys(secret: str) -> tokens.Keys:
    """Keys whose signing key is a fresh one held in memory (no database)."""
    from app import signing

    kid, private = signing.new_key()
    key = signing.SigningKey(kid, private.public_key(), private, 0.0)
    return tokens.Keys.derive(secret, tokens.FixedRing(signing.KeyRing([key], 300)))
