"""Faults survived: a worker killed in the middle of a rotation, the database cut off and
restored behind a TCP proxy, every pooled connection busy. Nobody is logged out, no session is
revoked, nothing is left half done, and the same cookies work once the fault is gone."""

from __future__ import annotations

import json
import os
import signal
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest
from polling import eventually
from servers import Reply, Server, post_form, server_env, sign_up
from support import PASSWORD, SECRET, signed_up
from tcpproxy import HANG, REFUSE, TcpProxy

from app import tokens
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.db import database, open_database
from app.models import LoginSession, RefreshToken, SecurityEvent

KEYS = tokens.Keys.derive(SECRET)
WAIT = 30  # seconds: the bound on every wait below


def reuse_events() -> int:
    return SecurityEvent.select().where(SecurityEvent.kind == "reuse_detected").count()


def wait_for_file(path, timeout: float = WAIT) -> str:
    eventually(path.exists, within=timeout, what=f"{path} appearing")
    return path.read_text()


@pytest.mark.slow
def test_worker_killed_mid_rotation_leaves_the_previous_value_usable(database_url, make_app,
                                                                     tmp_path):
    """The first rotation stops after its writes, before its commit (tests/paused_wsgi.py, a
    test-only entry point); its worker is then SIGKILLed. The rotation must vanish whole."""
    make_app()
    pause = tmp_path / "paused"
    env = server_env(database_url, SECRET, GATEHOUSE_TEST_PAUSE_FILE=pause)
    with Server(env, workers=2, app="paused_wsgi:app") as server:
        previous = sign_up(server, "ada@example.com", PASSWORD)[SESSION_COOKIE]
        lost: list[BaseException] = []

        def rotate() -> None:
            try:
                server.request("GET", "/api/me", cookies={SESSION_COOKIE: previous})
            except OSError as exc:  # the worker died with the response
                lost.append(exc)

        request = threading.Thread(target=rotate)
        request.start()
        os.kill(int(wait_for_file(pause)), signal.SIGKILL)
        request.join(timeout=WAIT)
        assert lost, "the paused request should have lost its response"

        session = LoginSession.get()
        assert (session.generation, session.ended_at) == (0, None)
        assert RefreshToken.select().count() == 1  # the successor's insert was rolled back

        again = server.request("GET", "/api/me", cookies={SESSION_COOKIE: previous})
        assert again.status == 200
        assert again.cookies[SESSION_COOKIE] == tokens.successor_handle(KEYS, previous)
        assert server.request("GET", "/api/me", cookies=again.cookies).status == 200
    assert LoginSession.get().generation == 1
    assert reuse_events() == 0


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture
def proxy(postgres_url):
    """Ask for it before make_app, so that it outlives the app's clean-up through it."""
    running = TcpProxy(urlsplit(postgres_url).port or 5432, urlsplit(postgres_url).hostname)
    yield running
    running.close()


def assert_unavailable_and_nothing_cleared(reply: Reply) -> None:
    assert reply.status == 503
    assert ACCESS_COOKIE not in reply.cookies and SESSION_COOKIE not in reply.cookies


@pytest.mark.slow
def test_database_cut_off_and_restored(proxy, postgres_url, make_app):
    """Two ways to lose PostgreSQL: it refuses (down, restarting) and it hangs (a vanished host,
    bounded by the connect timeout). Meanwhile every request that needs it answers 503 and
    clears no cookie; afterwards the very same cookies work in every worker."""
    make_app()  # the schema, through a direct connection the test also uses to look
    env = server_env(through(proxy, postgres_url), SECRET)
    with Server(env, workers=2) as server:
        laptop = sign_up(server, "ada@example.com", PASSWORD)  # valid access token
        phone = {SESSION_COOKIE: sign_up(server, "bob@example.com", PASSWORD)[SESSION_COOKIE]}
        rotations = 0
        for mode, attempts in ((REFUSE, 4), (HANG, 1)):
            proxy.cut(mode)
            for _ in range(attempts):
                assert server.request("GET", "/healthz").status == 503
                for cookies in (laptop, phone):  # the liveness check, and a rotation
                    assert_unavailable_and_nothing_cleared(
                        server.request("GET", "/api/me", cookies=cookies))
                assert_unavailable_and_nothing_cleared(
                    post_form(server, "/login", {"email": "ada@example.com",
                                                 "password": PASSWORD}, {}))
            proxy.restore()
            for _ in range(6):  # more requests than workers: each worker's pool recovers
                assert server.request("GET", "/healthz").status == 200
                assert server.request("GET", "/account", cookies=laptop).status == 200
                rotated = server.request("GET", "/api/me", cookies=phone)
                assert rotated.status == 200
                phone = {SESSION_COOKIE: rotated.cookies[SESSION_COOKIE]}
                rotations += 1
    assert LoginSession.select().where(LoginSession.ended_at.is_null()).count() == 2
    assert LoginSession.get(LoginSession.generation > 0).generation == rotations
    assert reuse_events() == 0


def test_idle_pooled_connection_broken_by_an_outage_is_replaced(proxy, postgres_url, make_app):
    """An outage that no request saw still broke the pooled connection: the pool must notice
    and connect afresh, so the first request after it succeeds."""
    app = make_app(DATABASE_URL=through(proxy, postgres_url))
    client = app.test_client()
    signed_up(client)
    assert client.get("/account").status_code == 200  # its connection now waits in the pool
    proxy.cut()
    proxy.restore()
    assert client.get("/account").status_code == 200
    proxy.cut()
    assert client.get("/account").status_code == 503
    assert client.get("/healthz").status_code == 503
    proxy.restore()
    assert client.get("/account").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_every_pooled_connection_busy_is_503_not_500(ada, database_url):
    """Threads > pool size: a request that waits out the pool's timeout is told to retry."""
    database.close_all()
    database.initialize(open_database(database_url, pool_size=1, wait=0.2))
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        database.connect()
        taken.set()
        release.wait(timeout=WAIT)
        database.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(timeout=WAIT)
        busy = ada.get("/api/me")
        assert busy.status_code == 503
        assert json.loads(busy.data)["error"] == "unavailable"
        assert ada.get("/healthz").status_code == 503
    finally:
        release.set()
        holder.join(timeout=WAIT)
    assert ada.get("/api/me").status_code == 200


def test_an_app_started_during_an_outage_boots_and_creates_its_schema_later(
        proxy, postgres_url, make_app):
    """A worker (re)started while PostgreSQL is away must boot (gunicorn stops the whole server
    when one cannot), answer 503 meanwhile, and create the schema once the database is back."""
    proxy.cut()
    app = make_app(DATABASE_URL=through(proxy, postgres_url))
    client = app.test_client()
    assert client.get("/healthz").status_code == 503
    assert client.get("/register").status_code == 200  # a page that needs no database
    proxy.restore()
    signed_up(client)
    assert client.get("/api/me").get_json()["email"] == "ada@example.com"
