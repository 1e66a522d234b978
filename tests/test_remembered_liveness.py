"""Workers remember their sessions' liveness; revocation must still reach every instance by the
very next request. Two gunicorn instances (one worker each, so that the worker that answers the
next request is the one that remembered the session) share the database under test: on
PostgreSQL each learns of a change by NOTIFY, on SQLite from the change log. Each trial makes
both instances remember a session, ends it through one of them and presents it to the other at
once: not once may it be accepted."""

from __future__ import annotations

import json

import pytest
from servers import Server, post_form, server_env, sign_up
from support import PASSWORD, SECRET

from app import session_store, settings
from app.db import database
from app.middleware import ACCESS_COOKIE, SESSION_COOKIE
from app.models import LoginSession, User

pytestmark = pytest.mark.slow

NEW_PASSWORD = "another correct horse battery"


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
        issued = session_store.start(User.get(User.email == email), keys=config.keys,
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
