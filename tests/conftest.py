"""Fixtures: an app on a temporary SQLite file (or TEST_DATABASE_URL), a controllable clock,
and browsers signed in through the real pages. The helpers they use are in support.py."""

from __future__ import annotations

import os

import peewee
import pytest
from mail_server import SmtpServer
from servers import free_port
from support import (
    CHEAP_ARGON2,
    PUBLIC_URL,
    SECRET,
    UA_FIREFOX,
    Clock,
    browser,
    is_postgres,
    reset_database,
    signed_up,
    skip_or_fail,
    unreachable,
)

from app import create_app, liveness
from app.db import database


@pytest.fixture
def clock() -> Clock:
    return Clock()


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
        made.append(create_app(settings))
        return made[-1]

    made: list = []
    yield make
    for each in made:
        liveness.close(each)  # its PostgreSQL listening connection
    reset_database()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return browser(app, UA_FIREFOX)


@pytest.fixture
def ada(client):
    """``client`` registered and signed in as ada@example.com."""
    signed_up(client)
    return client


@pytest.fixture
def database_down(monkeypatch):
    """Call it to make every query fail as an unreachable server does."""

    def down(monkeypatch=monkeypatch):
        def refuse(*args, **kwargs):
            raise peewee.OperationalError("could not connect to server")
        monkeypatch.setattr(database.obj, "execute_sql", refuse)
    return down


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1 at a free port; ``smtp.mailbox`` holds what it got."""
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def mail_app(make_app, smtp):
    """An app that requires verified addresses and sends mail to the ``smtp`` server."""
    app = make_app(GATEHOUSE_EMAIL_VERIFICATION="required", GATEHOUSE_SMTP_URL=smtp.url,
                   GATEHOUSE_PUBLIC_URL=PUBLIC_URL)
    yield app
    app.extensions["gatehouse_mail"].dispatcher.stop()
