"""Fixtures: an app on a temporary SQLite file (or TEST_DATABASE_URL), a controllable clock,
and small actions that drive the real pages with real CSRF tokens."""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup

from app import create_app
from app.db import database
from app.middleware import ACCESS_COOKIE, SESSION_COOKIE
from app.models import ALL

PASSWORD = "correct horse battery staple"
SECRET = "test-secret-key-that-is-long-enough-0123456789"
CHEAP_ARGON2 = {  # argon2.profiles.CHEAPEST: tests only
    "GATEHOUSE_ARGON2_TIME_COST": 1, "GATEHOUSE_ARGON2_MEMORY_KIB": 8,
    "GATEHOUSE_ARGON2_PARALLELISM": 1,
}
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


@pytest.fixture
def clock() -> Clock:
    return Clock()


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql")


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


@pytest.fixture
def database_url(tmp_path) -> str:
    """The database under test: PostgreSQL when TEST_DATABASE_URL is set, else a SQLite file."""
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'test.sqlite3'}"
    if is_postgres(url) and (reason := unreachable(url)):
        skip_or_fail(reason)
    return url


@pytest.fixture
def postgres_url(database_url) -> str:
    """For tests of faults that only PostgreSQL has (a network between the app and it)."""
    if not is_postgres(database_url):
        pytest.skip("PostgreSQL only: runs when TEST_DATABASE_URL=postgresql://... is set "
                    "(the PostgreSQL pass of .ci/run)")
    return database_url


@pytest.fixture
def make_app(database_url, clock):
    def make(**overrides):
        # Mail off unless a test asks for it: those tests use ``mail_app`` and the SMTP server.
        settings = {"TESTING": True, "SECRET_KEY": SECRET, "DATABASE_URL": database_url,
                    "GATEHOUSE_CLOCK": clock, "GATEHOUSE_EMAIL_VERIFICATION": "off",
                    **CHEAP_ARGON2, **overrides}
        return create_app(settings)

    yield make
    reset_database()


@pytest.fixture
def app(make_app):
    return make_app()


def reset_database() -> None:
    """Empty every table, so that a shared PostgreSQL database starts each test clean."""
    with database.connection_context():
        database.drop_tables(ALL, safe=True)
    database.close_all()


@pytest.fixture
def client(app):
    return browser(app, UA_FIREFOX)


def browser(app, user_agent: str = UA_FIREFOX):
    """A test client that presents itself as one browser (its own cookie jar)."""
    client = app.test_client()
    client.environ_base.update(HTTP_USER_AGENT=user_agent, REMOTE_ADDR="203.0.113.7")
    return client


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def csrf_token(response) -> str:
    field = page(response).find("input", attrs={"name": "csrf_token"})
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


@pytest.fixture
def ada(client):
    """``client`` registered and signed in as ada@example.com."""
    signed_up(client)
    return client


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1 at a free port; ``smtp.mailbox`` holds what it got."""
    from mail_server import SmtpServer
    from servers import free_port

    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


PUBLIC_URL = "https://gatehouse.test"


@pytest.fixture
def mail_app(make_app, smtp):
    """An app that requires verified addresses and sends mail to the ``smtp`` server."""
    app = make_app(GATEHOUSE_EMAIL_VERIFICATION="required", GATEHOUSE_SMTP_URL=smtp.url,
                   GATEHOUSE_PUBLIC_URL=PUBLIC_URL)
    yield app
    app.extensions["gatehouse_mail"].dispatcher.stop()
