"""Real concurrency: many threads and several processes hit real gunicorn workers at the same
instant with the same expired access cookie and the same session cookie."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from servers import Server, _form, request, server_env, sign_in, sign_up
from support import PASSWORD, SECRET, expired_access_token

from app.carriers import ACCESS_COOKIE, SESSION_COOKIE

pytestmark = pytest.mark.slow

@pytest.fixture
def server(database_url, make_app):
    make_app()  # creates the schema (and empties it afterwards, for PostgreSQL)
    env = server_env(database_url, SECRET)
    with Server(env, workers=3, threads=8) as running:
        yield running


def expired_cookies(server: Server) -> dict[str, str]:
    """A signed-in browser's cookies, its access token expired (forged, not waited for)."""
    jar = sign_up(server, "ada@example.com", PASSWORD)
    me = json.loads(request(server.port, "GET", "/api/me", cookies=jar).body)
    return {ACCESS_COOKIE: expired_access_token(me["user_id"], me["session_id"]),
            SESSION_COOKIE: jar[SESSION_COOKIE]}


def hit(port: int, cookies: dict[str, str]) -> tuple[int, str | None]:
    reply = request(port, "GET", "/api/me", cookies=cookies)
    return reply.status, reply.cookies.get(SESSION_COOKIE)


def assert_one_clean_rotation(results, presented: str) -> None:
    from app.models import LoginSession, RefreshToken, SecurityEvent

    statuses = [status for status, _ in results]
    handles = {handle for _, handle in results}
    assert statuses == [200] * len(results)
    assert len(handles) == 1 and None not in handles and presented not in handles
    (session,) = LoginSession.select()
    assert session.ended_at is None and session.generation == 1
    assert RefreshToken.select().count() == 2  # the presented value and one successor
    assert not SecurityEvent.select().where(SecurityEvent.kind == "reuse_detected").exists()


def test_twenty_threads_at_the_same_instant(server):
    cookies = expired_cookies(server)
    barrier = threading.Barrier(20, timeout=30)
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def worker():
        barrier.wait()
        result = hit(server.port, cookies)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 20
    assert_one_clean_rotation(results, cookies[SESSION_COOKIE])


def _process_hit(args):
    port, cookies, start_at = args
    time.sleep(max(0.0, start_at - time.time()))
    return hit(port, cookies)


def test_several_processes_at_the_same_instant(server):
    cookies = expired_cookies(server)
    start_at = time.time() + 1.0
    context = multiprocessing.get_context("spawn")
    with context.Pool(6) as pool:
        results = pool.map(_process_hit, [(server.port, cookies, start_at)] * 12, chunksize=2)
    assert_one_clean_rotation(results, cookies[SESSION_COOKIE])


def test_parallel_wrong_passwords_never_check_more_than_the_limit(database_url, make_app):
    """Each attempt is counted before its password is checked, in one statement: 40 attempts
    at once on one account, across 3 worker processes of 8 threads, run exactly 10 checks."""
    from app.models import SecurityEvent, User

    make_app()
    env = server_env(database_url, SECRET, GATEHOUSE_LOGIN_LIMIT_ACCOUNT=10,
                     GATEHOUSE_LOGIN_LIMIT_IP=1000)
    with Server(env, workers=3, threads=8) as running:
        sign_up(running, "ada@example.com", PASSWORD)
        jars = [{} for _ in range(40)]
        bodies = [urlencode({"csrf_token": _form(running, "/login", jar),
                             "email": "ada@example.com", "password": "wrong, and guessed"})
                  .encode() for jar in jars]
        barrier = threading.Barrier(len(jars), timeout=30)

        def attempt(n: int) -> int:
            barrier.wait()
            return request(running.port, "POST", "/login", cookies=jars[n], body=bodies[n],
                           headers={"Content-Type": "application/x-www-form-urlencoded"}).status

        with ThreadPoolExecutor(len(jars)) as pool:
            statuses = list(pool.map(attempt, range(len(jars))))
    checks = SecurityEvent.select().where(SecurityEvent.user == User.get().id,
                                          SecurityEvent.kind == "sign_in_failed").count()
    assert checks == 10
    assert sorted(statuses) == [401] * 10 + [429] * 30


def test_parallel_sign_ins_never_exceed_the_session_cap(database_url, make_app):
    from app.models import LoginSession

    make_app()
    # Attempts in flight count against the account until each succeeds: allow them all.
    env = server_env(database_url, SECRET, GATEHOUSE_MAX_SESSIONS_PER_USER=5,
                     GATEHOUSE_LOGIN_LIMIT_ACCOUNT=100)
    with Server(env, workers=3, threads=8) as running:
        sign_up(running, "ada@example.com", PASSWORD)
        with ThreadPoolExecutor(24) as pool:
            list(pool.map(lambda _: sign_in(running, "ada@example.com", PASSWORD), range(24)))
    assert LoginSession.select().where(LoginSession.ended_at.is_null()).count() == 5
