"""A credential change wins every race, under real gunicorn workers: sign-ins whose password
was checked before the owner changed it are not live afterwards, however late their session
row was written (reproduction 3 of the outside review)."""

from __future__ import annotations

import threading
import time

import pytest
from servers import Server, post_form, server_env, sign_in, sign_up
from support import PASSWORD, SECRET

from app.carriers import ACCESS_COOKIE, SESSION_COOKIE

pytestmark = pytest.mark.slow

THREADS = 8
NEW_PASSWORD = "a completely different passphrase"
MAX_SIGN_INS = 200  # per thread: a bound, never reached in practice
DEADLINE = 60  # seconds for the whole race, a bound for a stuck server


@pytest.fixture
def server(database_url, make_app):
    make_app()  # creates the schema (and empties it afterwards, for PostgreSQL)
    # The production argon2 cost: the race is the time a sign-in spends checking a password.
    env = server_env(database_url, SECRET, GATEHOUSE_ARGON2_TIME_COST=2,
                     GATEHOUSE_ARGON2_MEMORY_KIB=19 * 1024, GATEHOUSE_LOGIN_LIMIT_ACCOUNT=1000,
                     GATEHOUSE_LOGIN_LIMIT_IP=1000)
    with Server(env, workers=2, threads=THREADS) as running:
        yield running


def signing_in_until(server: Server, done: threading.Event, jars: list[dict[str, str]],
                     stop_at: float) -> None:
    """Sign in with the old password again and again until ``done`` (and one more round, so
    that the sign-ins in progress when the change returned finish too)."""
    for _ in range(MAX_SIGN_INS):
        finishing = done.is_set()
        try:
            jars.append(sign_in(server, "ada@example.com", PASSWORD))
        except AssertionError:  # refused: the old password no longer works
            return
        if finishing or time.monotonic() > stop_at:
            return


def test_sign_ins_racing_a_password_change_are_not_live_after_it(server):
    owner = sign_up(server, "ada@example.com", PASSWORD)
    done, jars = threading.Event(), []
    stop_at = time.monotonic() + DEADLINE
    threads = [threading.Thread(target=signing_in_until, args=(server, done, jars, stop_at))
               for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    while len(jars) < THREADS and time.monotonic() < stop_at:
        time.sleep(0.01)  # let every thread get going before the change
    changed = post_form(server, "/account/password",
                        {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, owner)
    done.set()
    for thread in threads:
        thread.join(timeout=DEADLINE)
    assert changed.status == 302
    assert len(jars) > THREADS  # sign-ins were in progress around the change
    live = [jar for jar in jars
            if server.request("GET", "/api/me", cookies={
                name: jar[name] for name in (ACCESS_COOKIE, SESSION_COOKIE)}).status == 200]
    assert live == []
    assert server.request("GET", "/api/me", cookies=owner).status == 200  # the changer stays
