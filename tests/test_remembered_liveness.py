"""Workers remember their sessions' liveness; revocation must still reach every instance by the
very next request. Two gunicorn instances (one worker each, so that the worker that answers the
next request is the one that remembered the session) share the database under test: on
PostgreSQL each learns of a change by NOTIFY, on SQLite from the change log. Each trial makes
both instances remember a session, ends it through one of them and presents it to the other at
once: not once may it be accepted."""

from __future__ import annotations

import functools
import json
import threading
import time

import pytest
from servers import Server, free_port, post_form, server_env, sign_up
from support import (
    PASSWORD,
    SECRET,
    UA_PHONE,
    Cookies,
    browser,
    deaf_to_revocations,
    login,
    only_session,
    signed_up,
)

from app import liveness, settings
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.config import LAST_ACTIVE_RESOLUTION
from app.db import database, engine, write_transaction
from app.liveness import confirm, listener
from app.liveness.follower import SqliteFollower
from app.models import LoginSession, SecurityEvent, SessionChange, User
from app.sessions import store
from app.sessions.state import SessionState

pytestmark = pytest.mark.slow

NEW_PASSWORD = "another correct horse battery"
LISTENING = f"{listener.LISTENER_NAME} %"  # a worker's listening connection, once ready


@pytest.fixture
def pair(database_url, make_app):
    """Two instances, and the test's app for starting sessions straight in the database."""
    app = make_app()
    env = server_env(database_url, SECRET, GATEHOUSE_REFRESH_GRACE=0)
    servers = [Server(env, workers=1).launch() for _ in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        yield app, servers
    finally:
        for server in servers:
            server.stop()


def start_session(app, email: str) -> dict[str, str]:
    """A new session of ``email``'s account, as a browser's cookies (no HTTP, no argon2)."""
    with app.app_context(), database.connection_context():
        config = settings.current()
        issued = store.start(User.get(User.email == email), keys=config.keys,
                                     policy=config.policy, now=config.clock(),
                                     user_agent="victim", ip_address="127.0.0.1")
    return {ACCESS_COOKIE: issued.access_token, SESSION_COOKIE: issued.handle}


def me(server: Server, cookies: dict[str, str]) -> int:
    return server.request("GET", "/api/me", cookies={ACCESS_COOKIE: cookies[ACCESS_COOKIE]},
                          timeout=30).status


def remembered_by_both(servers: list[Server], victim: dict[str, str]) -> None:
    for server in servers:
        assert me(server, victim) == 200


def session_id(server: Server, cookies: dict[str, str]) -> str:
    return json.loads(server.request("GET", "/api/me", cookies=cookies).body)["session_id"]


def test_a_revoked_session_is_refused_by_the_other_instance_at_once(pair):
    """1,000 trials alternating instances: revoke through one, present to the other."""
    app, servers = pair
    phone = sign_up(servers[0], "ada@example.com", PASSWORD)
    token = _csrf(servers[0], phone)
    accepted = 0
    for trial in range(1000):
        here, there = servers[trial % 2], servers[(trial + 1) % 2]
        victim = start_session(app, "ada@example.com")
        remembered_by_both(servers, victim)
        revoked = here.request(
            "POST", f"/sessions/{session_id(here, victim)}/revoke", cookies=phone,
            body=f"csrf_token={token}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert revoked.status == 302, revoked.body[:300]
        phone.update(revoked.cookies)
        accepted += me(there, victim) == 200
    assert accepted == 0


def _csrf(server: Server, jar: dict[str, str]) -> str:
    from support import csrf_token_in

    reply = server.request("GET", "/sessions", cookies=jar)
    jar.update(reply.cookies)
    return csrf_token_in(reply.body)


@pytest.mark.parametrize("change", ["password", "others"])
def test_a_credential_change_reaches_the_other_instance_at_once(pair, change):
    """200 trials each: a password change, or "sign out all other sessions", through one
    instance; the other instance refuses the other sessions on their next request."""
    app, servers = pair
    password = [PASSWORD, NEW_PASSWORD]
    laptop = sign_up(servers[0], "ada@example.com", PASSWORD)
    accepted = 0
    for trial in range(200):
        here, there = servers[trial % 2], servers[(trial + 1) % 2]
        victim = start_session(app, "ada@example.com")
        remembered_by_both(servers, victim)
        if change == "password":
            data = {"current_password": password[0], "new_password": password[1]}
            reply = post_form(here, "/account/password", data, laptop)
            password.reverse()
        else:
            reply = post_form(here, "/sessions/revoke-others", {"password": PASSWORD}, laptop,
                              form_page="/sessions")
        assert reply.status == 302, reply.body[:300]
        accepted += me(there, victim) == 200
    assert accepted == 0
    with app.app_context(), database.connection_context():
        assert LoginSession.select().where(LoginSession.ended_at.is_null()).count() == 1


def test_reuse_detected_on_one_instance_is_refused_by_the_other_at_once(pair):
    """200 trials: a session rotates and its new token is remembered by both instances; then
    its replaced value is presented to one (reuse, the session ends), and the new access token
    to the other."""
    app, servers = pair
    sign_up(servers[0], "ada@example.com", PASSWORD)
    accepted = 0
    for trial in range(200):
        here, there = servers[trial % 2], servers[(trial + 1) % 2]
        stolen = start_session(app, "ada@example.com")
        rotated = here.request("GET", "/api/me", cookies={SESSION_COOKIE: stolen[SESSION_COOKIE]})
        assert rotated.status == 200
        victim = {**stolen, **rotated.cookies}
        remembered_by_both(servers, victim)
        reused = here.request("GET", "/api/me", cookies={SESSION_COOKIE: stolen[SESSION_COOKIE]})
        assert reused.status == 401 and b"reuse" in reused.body.lower(), reused.body[:300]
        accepted += me(there, victim) == 200
    assert accepted == 0


# --- faults: a change a worker may have missed is never taken on trust -------------------------


def revoke_through(server: Server, phone: dict[str, str], victim: dict[str, str]) -> None:
    reply = post_form(server, f"/sessions/{session_id(server, victim)}/revoke", {}, phone,
                      form_page="/sessions")
    assert reply.status == 302, reply.body[:300]


def terminate(postgres_url: str, where: str) -> int:
    """End the PostgreSQL server processes of this database that match ``where``."""
    import psycopg2

    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid() AND "
                       + where)
        killed = cursor.fetchone()[0]
    connection.close()
    return killed


def listeners(postgres_url: str) -> int:
    import psycopg2

    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                       "current_database() AND application_name LIKE %s", (LISTENING,))
        count = cursor.fetchone()[0]
    connection.close()
    return count


def listening_again(servers: list[Server], postgres_url: str, cookies: dict[str, str]) -> None:
    """Requests until both workers listen again (bounded: they retry once a second)."""
    for _ in range(100):
        for server in servers:
            assert me(server, cookies) == 200
        if listeners(postgres_url) == 2:
            return
        time.sleep(0.1)
    raise AssertionError("the workers did not listen again")


@pytest.mark.parametrize("killed", ["the listening connections", "every connection"])
def test_a_change_made_while_a_worker_cannot_listen_is_never_missed(pair, postgres_url,
                                                                    killed):
    """The listening connection killed (or every connection of the app, as a PostgreSQL
    restart does) just before a session is revoked: the workers that remembered it refuse it
    on the next request, and once they listen again, they remember and refuse as before."""
    app, (a, b) = pair
    phone = sign_up(a, "ada@example.com", PASSWORD)
    for _ in range(2):
        victim = start_session(app, "ada@example.com")
        remembered_by_both([a, b], victim)
        where = (f"application_name LIKE '{LISTENING}'"
                 if killed == "the listening connections" else "TRUE")
        assert terminate(postgres_url, where) >= 2
        revoke_through(a, phone, victim)
        assert me(b, victim) == 401 and me(a, victim) == 401
        listening_again([a, b], postgres_url, phone)


def test_a_revocation_a_worker_never_confirms_ends_its_listening_connection(
        database_url, make_app, postgres_url):
    """Instance B's worker takes in every change a revocation waits for without applying or
    confirming it (tests/deaf_wsgi.py). The revoking request on A waits for it in vain, then
    ends B's listening connection before responding: B refuses the session on the very next
    request, listens again, and the same happens each time."""
    app = make_app()
    env = server_env(database_url, SECRET, GATEHOUSE_REFRESH_GRACE=0)
    a = Server(env, workers=1).launch()
    b = Server(env, workers=1, app="deaf_wsgi:app").launch()
    try:
        a.wait_ready()
        b.wait_ready()
        phone = sign_up(a, "ada@example.com", PASSWORD)
        for _ in range(3):
            victim = start_session(app, "ada@example.com")
            listening_again([a, b], postgres_url, phone)
            remembered_by_both([a, b], victim)
            revoke_through(a, phone, victim)
            assert me(b, victim) == 401 and me(a, victim) == 401
        assert a.output().count("no confirmation from 1 listening worker") == 3
    finally:
        a.stop()
        b.stop()


def test_a_change_logged_without_notifying_is_caught_by_the_listeners_own_look(pair,
                                                                                 postgres_url):
    """A revocation written straight to the database with its log row but no NOTIFY (not what
    the app does: something outside it): each listener finds the log's newest id ahead of what
    it received within CHECK_EVERY seconds, and forgets what it remembered."""
    app, servers = pair
    sign_up(servers[0], "ada@example.com", PASSWORD)
    victim = start_session(app, "ada@example.com")
    remembered_by_both(servers, victim)
    with app.app_context(), database.connection_context():
        session = LoginSession.get(LoginSession.ended_at.is_null(),
                                   LoginSession.user_agent == "victim")
        with write_transaction():
            LoginSession.update(ended_at=time.time(), end_reason="revoked").where(
                LoginSession.id == session.id).execute()
            SessionChange.create(session_id=session.id, created_at=time.time())
    time.sleep(2 * listener.CHECK_EVERY + 0.5)
    for server in servers:
        assert me(server, victim) == 401


# --- in one process: what the memory may and may not decide -------------------------------------


def test_a_worker_that_began_listening_while_a_revocation_was_open_must_confirm_it(
        make_app, postgres_url):
    """A revocation takes its change id; another change takes a later one and commits first;
    only then does a worker begin to listen, and remember the session as live. Ids cannot tell
    that this worker began before the revocation committed; its transaction id can: the
    revocation waits for it, here in vain (it never confirms), and cuts it off before
    returning, so the worker refuses the session on its next request."""
    revoker, late = make_app(), make_app()
    laptop = browser(revoker)
    signed_up(laptop)
    with revoker.app_context(), database.connection_context():
        session = only_session()
    opened, proceed = threading.Event(), threading.Event()

    def revoke() -> None:
        with revoker.app_context(), database.connection_context():
            with write_transaction():
                LoginSession.update(ended_at=time.time(), end_reason="revoked").where(
                    LoginSession.id == session.id).execute()
                liveness.announce(session_id=session.id, now=time.time())
                opened.set()
                proceed.wait(timeout=30)
            # committed: waits for every worker listening before, then returns

    revoking = threading.Thread(target=revoke)
    revoking.start()
    assert opened.wait(timeout=30)
    with revoker.app_context(), database.connection_context(), write_transaction():
        liveness.announce(user_id=session.user_id, now=time.time())  # later, first
    phone = browser(late)
    Cookies.of(laptop).put(phone)
    with late.app_context():
        follower = engine().follower()
        follower.receive = functools.partial(deaf_to_revocations, follower)
        liveness.worker(late).follower = follower
    assert phone.get("/api/me").status_code == 200  # listening now; remembered live
    proceed.set()
    revoking.join(timeout=30)
    assert not revoking.is_alive()
    assert phone.get("/api/me").status_code == 401


def test_a_revocation_no_worker_can_be_shown_to_hold_answers_503(make_app, postgres_url,
                                                                   monkeypatch):
    """The connection fails while confirmations are awaited, and no other connection can be
    made to end the listeners: the revocation is recorded, but the response does not claim
    it holds everywhere (503). The next request, which asks the database, refuses it."""
    import psycopg2

    app = make_app()
    laptop, phone = browser(app), browser(app, UA_PHONE)
    signed_up(laptop)
    login(phone)
    mine = laptop.get("/api/me").get_json()["session_id"]

    def lost(*args):
        raise psycopg2.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(confirm, "confirmations", lost)
    monkeypatch.setattr(engine(), "listen_params",
                        lambda: {"host": "127.0.0.1", "port": free_port(), "connect_timeout": 1})
    # The phone signed in just now: no password is needed, so the one write is the
    # revocation's (a password sent would be checked, and its re-authentication written first).
    response = phone.delete(f"/api/sessions/{mine}", headers={"X-Gatehouse-Request": "1"})
    assert response.status_code == 503
    monkeypatch.undo()
    with app.app_context(), database.connection_context():
        assert LoginSession.get(LoginSession.public_id == mine).end_reason == "revoked"
    assert laptop.get("/api/me").status_code == 401


def test_a_request_never_waits_for_the_listening_thread(make_app, postgres_url):
    """While the listening thread is in a round trip (it holds the follower's lock), or when
    it has not read the newest change for too long, a request asks the database instead of
    waiting or trusting what is remembered."""
    app = make_app()
    laptop = browser(app)
    signed_up(laptop)
    assert laptop.get("/api/me").status_code == 200
    follower = liveness.worker(app).follower
    held, done = threading.Event(), threading.Event()

    def round_trip() -> None:  # as the thread does, for at most 5 s
        with follower.lock:
            held.set()
            done.wait(timeout=5)

    with app.app_context():
        assert liveness.trusted_memory() is not None
        holder = threading.Thread(target=round_trip)
        holder.start()
        assert held.wait(timeout=5)
        assert liveness.trusted_memory() is None
        done.set()
        holder.join()
        checked_at, follower.checked_at = follower.checked_at, 0.0
        assert liveness.trusted_memory() is None
        follower.checked_at = checked_at
        assert liveness.trusted_memory() is not None


def test_a_revoking_connection_stops_listening_for_confirmations(make_app, postgres_url):
    """The pooled connection that waited for confirmations listens on nothing afterwards: it
    would otherwise be woken by every notification, for as long as it lives."""
    app = make_app()
    laptop = browser(app)
    signed_up(laptop)
    assert laptop.get("/api/me").status_code == 200
    with app.app_context(), database.connection_context():
        session = only_session()
        store.revoke(session.public_id, user_id=session.user_id, reason="revoked",
                             now=time.time())
        assert database.execute_sql("SELECT pg_listening_channels()").fetchall() == []
        assert database.connection().notifies == []
    assert laptop.get("/api/me").status_code == 401



def test_a_worker_that_remembers_older_activity_does_not_end_a_session(make_app, clock):
    """Another worker saw the session active since this one remembered it: the idle limit
    counted from the remembered "last active" has passed, the real one has not. The session
    stays live (the refusal is never made on remembered facts)."""
    limits = {"GATEHOUSE_SESSION_IDLE_TTL": 3600, "GATEHOUSE_ACCESS_TOKEN_TTL": 3 * 3600}
    first, second = make_app(**limits), make_app(**limits)
    laptop = browser(first)
    signed_up(laptop)
    assert laptop.get("/api/me").status_code == 200  # remembered by the first worker
    other_worker = browser(second)
    Cookies.of(laptop).put(other_worker)
    clock.advance(1800)
    assert other_worker.get("/api/me").status_code == 200  # writes "last active"
    clock.advance(1800 + LAST_ACTIVE_RESOLUTION + 1)
    assert laptop.get("/api/me").status_code == 200
    assert only_session().ended_at is None
    clock.advance(3600 + LAST_ACTIVE_RESOLUTION)  # and the limit itself still holds
    assert laptop.get("/api/me").status_code == 401
    assert only_session().end_reason == "idle_timeout"


def test_a_session_forgotten_while_a_request_used_it_is_not_remembered_again(make_app, clock,
                                                                             monkeypatch):
    """The request reads the remembered facts; the session is revoked and forgotten at that
    moment (by the listening thread); the request, in flight, is served, and writes its "last
    active" (due), but must not put the facts it read back into memory over the revocation."""
    app = make_app()
    laptop = browser(app)
    signed_up(laptop)
    assert laptop.get("/api/me").status_code == 200
    memory = liveness.worker(app).memory
    public_id = laptop.get("/api/me").get_json()["session_id"]
    assert memory.get(public_id) is not None
    clock.advance(LAST_ACTIVE_RESOLUTION + 1)  # the next request writes "last active"
    read = memory.get

    def read_then_forgotten(session_public_id: str) -> SessionState | None:
        row = read(session_public_id)
        if row is not None:
            memory.forget(row.principal.session_id, None)  # the thread, meanwhile
        return row

    monkeypatch.setattr(memory, "get", read_then_forgotten)
    assert laptop.get("/api/me").status_code == 200
    monkeypatch.undo()
    assert memory.get(public_id) is None


def test_uses_of_a_remembered_session_after_it_ended_are_each_recorded(make_app, clock):
    """The worker remembered the session live; once it has ended, every request that still
    presents it is refused on the stored row, and so counted there, with an event each."""
    app = make_app()
    laptop = browser(app)
    signed_up(laptop)
    assert laptop.get("/api/me").status_code == 200
    session = only_session()
    memory = liveness.worker(app).memory
    assert memory.get(session.public_id) is not None
    copy = Cookies.of(laptop)
    with app.app_context():
        store.revoke(session.public_id, user_id=session.user_id, reason="revoked",
                             now=clock.now)
    for client in (laptop, browser(app)):
        copy.put(client)
        assert client.get("/api/me").status_code == 401
    assert only_session().refused_uses == 2
    assert SecurityEvent.select().where(SecurityEvent.kind == "refused_use").count() == 2
    assert memory.get(session.public_id) is None


def test_a_gap_in_the_change_ids_forgets_everything():
    memory = liveness.Memory(10)
    row = live_row(session_id=1, user_id=7)
    memory.put(row, memory.version)
    follower = SqliteFollower("unused")
    follower.apply(memory, 1, 99, None)  # another session: this one stays remembered
    assert memory.get(row.principal.session_public_id) == row
    follower.apply(memory, 3, 98, None)  # 2 never arrived
    assert memory.get(row.principal.session_public_id) is None


def test_the_memory_is_bounded_and_forgets_by_session_and_by_person():
    memory = liveness.Memory(2)
    rows = [live_row(session_id=n, user_id=n % 2) for n in range(1, 4)]
    for row in rows:
        memory.put(row, memory.version)
    assert [memory.get(r.principal.session_public_id) for r in rows] == [None, rows[1], rows[2]]
    memory.forget(None, 1)  # the person of session 3
    assert memory.get(rows[2].principal.session_public_id) is None
    memory.forget(2, None)
    assert memory.states == {} and memory.by_user == {} and memory.public_ids == {}
    stale = memory.version - 1
    memory.put(rows[0], stale)  # read before a forget: not remembered
    assert memory.states == {}


def live_row(*, session_id: int, user_id: int) -> SessionState:
    return SessionState(
        id=session_id, public_id=f"session{session_id}", user_id=user_id,
        user_public_id=f"user{user_id}", email="a@example.com", generation=0, current_hash="",
        rotated_at=0.0, successor_seen=False, rekeyed_at=None, rekey_generation=None,
        proven_at=0.0, last_active_at=0.0, absolute_expires_at=1e12, ended_at=None,
        end_reason=None, credential_epoch=0, user_epoch=0, user_epoch_reason="",
        last_ip_address="", last_user_agent="", key_thumbprint="", client_id="")
