"""Two app instances (two gunicorn processes with several workers each, on two ports) sharing
one database, as behind a load balancer: sessions move between them, revocation reaches both
at once, and parallel rotation converges across them. Runs on SQLite (two instances on one
file) and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier, BrokenBarrierError

import pytest
from servers import ROOT, Server, post_form, server_env, sign_in, sign_up
from support import PASSWORD, SECRET, expired_access_token, is_postgres, reset_database

from app import tokens
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.db import database
from app.models import ALL, LoginSession, RefreshToken, SecurityEvent

pytestmark = pytest.mark.slow

WORKERS, THREADS = 3, 4
KEYS = tokens.Keys.derive(SECRET)


def launch_together(env: dict[str, str]) -> list[Server]:
    """Start two instances at the same moment (their workers all start at once too)."""
    servers = [Server(env, workers=WORKERS, threads=THREADS).launch() for _ in range(2)]
    try:
        for server in servers:
            server.wait_ready()
    except Exception:
        for server in servers:
            server.stop()
        raise
    return servers


@pytest.fixture
def instances(database_url, make_app):
    make_app()  # creates the schema (and empties it afterwards, for PostgreSQL)
    servers = launch_together(server_env(database_url, SECRET))
    yield servers
    for server in servers:
        server.stop()


def auth_cookies(jar: dict[str, str]) -> dict[str, str]:
    return {name: jar[name] for name in (ACCESS_COOKIE, SESSION_COOKIE)}


def test_empty_database_gets_its_schema_from_instances_starting_together(database_url,
                                                                        make_app):
    """Six workers of two instances start at once against an empty database: the schema is
    created once (an advisory lock on PostgreSQL), no worker fails to boot, and it works."""
    make_app()
    reset_database()
    assert database.get_tables() == []
    a, b = launch_together(server_env(database_url, SECRET))
    try:
        for server in (a, b):
            assert server.process.poll() is None
            assert "Traceback" not in server.output(), server.output()
        assert sorted(database.get_tables()) == sorted(m._meta.table_name for m in ALL)
        jar = sign_up(a, "ada@example.com", PASSWORD)
        assert b.request("GET", "/api/me", cookies=auth_cookies(jar)).status == 200
    finally:
        a.stop()
        b.stop()


def test_a_session_moves_between_instances_and_revocation_reaches_both(instances):
    a, b = instances
    laptop = sign_up(a, "ada@example.com", PASSWORD)

    served = b.request("GET", "/api/me", cookies=auth_cookies(laptop))
    assert served.status == 200 and served.cookies == {}
    laptop_id = json.loads(served.body)["session_id"]

    # No access cookie: instance B rotates a session that instance A started.
    rotated = b.request("GET", "/api/me", cookies={SESSION_COOKIE: laptop[SESSION_COOKIE]})
    assert rotated.status == 200
    assert rotated.cookies[SESSION_COOKIE] not in ("", laptop[SESSION_COOKIE])
    laptop.update(rotated.cookies)
    back_on_a = a.request("GET", "/account", cookies=laptop)
    assert back_on_a.status == 200 and SESSION_COOKIE not in back_on_a.cookies
    assert LoginSession.get(LoginSession.public_id == laptop_id).generation == 1

    # The phone, signed in on B, signs the laptop out on A; the laptop's access token has not
    # expired, yet its very next request on B fails, and so would one on A.
    phone = sign_in(b, "ada@example.com", PASSWORD)
    revoked = post_form(a, f"/sessions/{laptop_id}/revoke", {}, phone, form_page="/sessions")
    assert revoked.status == 302
    for server in (b, a):
        refused = server.request("GET", "/api/me", cookies=auth_cookies(laptop))
        assert refused.status == 401
        assert refused.cookies.get(SESSION_COOKIE) == ""  # cleared

    # The phone signs out on B; its cookies are dead on A at once.
    assert a.request("GET", "/api/me", cookies=auth_cookies(phone)).status == 200
    post_form(b, "/logout", {}, phone, form_page="/account")
    assert a.request("GET", "/api/me", cookies=auth_cookies(phone)).status == 401


BURSTS, PARALLEL = 20, 50


def burst(servers: list[Server], cookies: dict[str, str]) -> list[tuple[int, str | None]]:
    """PARALLEL requests released together, alternating between the instances."""
    barrier = Barrier(PARALLEL, timeout=30)

    def one(i: int) -> tuple[int, str | None]:
        try:
            barrier.wait()
            reply = servers[i % 2].request("GET", "/api/me", cookies=cookies, timeout=60)
        except (OSError, BrokenBarrierError):
            return 0, None
        return reply.status, reply.cookies.get(SESSION_COOKIE)

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(one, range(PARALLEL)))


def test_parallel_bursts_across_instances_converge(instances, database_url):
    """A chain of BURSTS rotations; each burst is PARALLEL requests spread over both instances,
    all presenting the same expired access cookie and the same session cookie. Every request
    must succeed and receive the one successor; the database must hold exactly one successor
    per burst; nobody may be logged out and no reuse may be detected. The figures are printed
    and written to test-artifacts/ for the record."""
    jar = sign_up(instances[0], "ada@example.com", PASSWORD)
    me = json.loads(instances[0].request("GET", "/api/me", cookies=auth_cookies(jar)).body)
    handle = jar[SESSION_COOKIE]
    figures = {"engine": "postgresql" if is_postgres(database_url) else "sqlite",
               "instances": len(instances), "workers_per_instance": WORKERS,
               "threads_per_worker": THREADS, "parallel_requests": PARALLEL, "bursts": 0,
               "requests": 0, "succeeded": 0, "rotations": 0, "false_logouts": 0,
               "duplicated_successors": 0, "wrong_or_missing_successor": 0,
               "reuse_detected": 0}
    for _ in range(BURSTS):
        expected = tokens.successor_handle(KEYS, handle)
        results = burst(instances, {
            ACCESS_COOKIE: expired_access_token(me["user_id"], me["session_id"]),
            SESSION_COOKIE: handle})
        session = LoginSession.get()
        handed_out = {value for status, value in results if status == 200 and value}
        figures["bursts"] += 1
        figures["requests"] += len(results)
        figures["succeeded"] += sum(status == 200 for status, _ in results)
        figures["false_logouts"] += sum(status == 401 or value == "" for status, value in results)
        figures["wrong_or_missing_successor"] += sum(value != expected for _, value in results)
        figures["duplicated_successors"] += (max(0, len(handed_out) - 1)
                                             + RefreshToken.select().count()
                                             - (session.generation + 1))
        figures["rotations"] = session.generation
        if session.ended_at is not None or handed_out != {expected}:
            break
        handle = expected
    figures["reuse_detected"] = SecurityEvent.select().where(
        SecurityEvent.kind == "reuse_detected").count()
    record(figures)

    assert figures["bursts"] == BURSTS and figures["rotations"] == BURSTS
    assert figures["succeeded"] == figures["requests"] == BURSTS * PARALLEL
    assert figures["false_logouts"] == figures["duplicated_successors"] == 0
    assert figures["wrong_or_missing_successor"] == figures["reuse_detected"] == 0
    assert LoginSession.get().ended_at is None


def record(figures: dict) -> None:
    out = ROOT / "test-artifacts" / f"concurrency-figures-{figures['engine']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nconcurrency figures ({out.relative_to(ROOT)}): {json.dumps(figures)}")
