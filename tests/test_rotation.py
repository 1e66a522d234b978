"""Transparent rotation, the forgiving cases (parallel requests, lost responses), reuse
detection and atomicity, driven through the real middleware with a controllable clock."""

import jwt
import pytest
from support import (
    SECRET,
    Cookies,
    browser,
    cookie,
    csrf_token,
    on_postgres,
    only_session,
    page,
    submit,
)

from app import settings, tokens, words
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.db import engine
from app.models import LoginSession, RefreshToken, SecurityEvent
from app.sessions import rules, store, use

KEYS = tokens.Keys.derive(SECRET)


@pytest.fixture
def app(make_app):
    return make_app(GATEHOUSE_ACCESS_TOKEN_TTL=1, GATEHOUSE_REFRESH_GRACE=30)


def expire_access(clock):
    clock.advance(10)  # well past the 1-second access lifetime and the 5-second leeway


def statements_of(client, path: str, monkeypatch) -> list[str]:
    """The SQL one request runs (transaction control aside, which the engines issue
    differently)."""
    from app.db import database

    ran, execute = [], database.obj.execute_sql
    monkeypatch.setattr(database.obj, "execute_sql",
                        lambda sql, *a, **k: ran.append(sql) or execute(sql, *a, **k))
    assert client.get(path).status_code == 200
    monkeypatch.undo()
    return [_as_run(sql) for sql in ran
            if not sql.startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "PREPARE"))]


def _as_run(sql: str) -> str:
    """A prepared statement's EXECUTE (on PostgreSQL) as the SQL it runs."""
    if not sql.startswith("EXECUTE "):
        return sql
    return engine().prepared_text(sql.split()[1])


def test_a_rotating_request_reads_its_session_once(ada, clock, monkeypatch):
    """Rotation returns the person it read: no second liveness lookup. A request whose session
    this worker remembers, with nothing changed since, runs no SQL. The common rotation reads
    its session, then writes the swap guarded by what it read: on PostgreSQL one statement
    (the swap, the successor, the change logged and notified); on SQLite the same writes in
    one transaction."""
    ada.get("/api/me")  # "last active" was just written
    assert statements_of(ada, "/api/me", monkeypatch) == []
    expire_access(clock)
    rotating = statements_of(ada, "/api/me", monkeypatch)
    assert rotating[0].startswith("SELECT t.generation")
    writes = rotating[1:]
    if on_postgres():
        assert len(writes) == 1 and writes[0].startswith("WITH s AS (UPDATE login_session")
        assert "INSERT INTO refresh_token" in writes[0] and "pg_notify" in writes[0]
    else:
        assert [sql.split()[0:3] for sql in writes] == [
            ["UPDATE", "login_session", "SET"], ["INSERT", "INTO", "refresh_token"],
            ["INSERT", "INTO", "session_change"]]
    assert only_session().generation == 1


def test_a_rotation_that_loses_the_race_is_decided_again_under_the_lock(ada, clock,
                                                                         monkeypatch):
    """Another request rotates the same value between this one's read and its swap: the swap
    writes nothing, and the locked path hands this request the same successor (a parallel
    tab), not a second one and not an alarm."""
    expire_access(clock)
    handle = Cookies.of(ada).session
    swap, results = engine().swap, []

    def overtaken(*args, **kwargs):
        monkeypatch.setattr(engine(), "swap", swap)  # the overtaking request's own
        results.append(use.rotate(handle, keys=settings.current().keys,
                                            policy=settings.current().policy, now=clock()))
        return swap(*args, **kwargs)

    monkeypatch.setattr(engine(), "swap", overtaken)
    response = ada.get("/api/me")
    assert response.status_code == 200 and len(results) == 1
    assert Cookies.of(ada).session == tokens.successor_handle(KEYS, handle)
    assert only_session().generation == 1 and RefreshToken.select().count() == 2
    assert not SecurityEvent.select().where(
        SecurityEvent.kind == rules.REUSE_DETECTED).exists()


def test_expired_access_token_on_a_get_is_rotated_transparently(ada, clock):
    before = Cookies.of(ada)
    expire_access(clock)
    response = ada.get("/account")
    assert response.status_code == 200
    after = Cookies.of(ada)
    assert after.session != before.session and after.access != before.access
    assert response.headers["Cache-Control"] == "no-store"
    assert only_session().generation == 1


def test_form_post_after_expiry_is_processed_not_lost(ada, clock):
    """A form filled in while the access token expired is still submitted and takes effect."""
    other = browser(ada.application)
    from support import login

    login(other)
    other_id = other.get("/api/me").get_json()["session_id"]
    token = csrf_token(ada.get("/sessions"))
    expire_access(clock)
    before = Cookies.of(ada)
    response = ada.post(f"/sessions/{other_id}/revoke", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/sessions"
    assert Cookies.of(ada).session != before.session
    assert LoginSession.get(LoginSession.public_id == other_id).end_reason == rules.REVOKED
    assert other.get("/api/me").status_code == 401


def test_parallel_requests_with_the_same_value_get_the_same_successor(ada, clock):
    stale = Cookies.of(ada)
    expire_access(clock)
    tabs = [browser(ada.application) for _ in range(3)]
    handles = set()
    for tab in tabs:
        stale.put(tab)
        assert tab.get("/api/me").status_code == 200
        handles.add(cookie(tab, SESSION_COOKIE))
    assert len(handles) == 1 and stale.session not in handles
    assert RefreshToken.select().count() == 2  # the original and exactly one successor
    assert not SecurityEvent.select().where(SecurityEvent.kind == "reuse_detected").exists()


def test_lost_response_after_the_grace_window_still_gets_the_same_successor(ada, clock):
    stale = Cookies.of(ada)
    expire_access(clock)
    lost = browser(ada.application)
    stale.put(lost)
    lost.get("/api/me")  # rotates; pretend this response never reached the browser
    successor = cookie(lost, SESSION_COOKIE)
    clock.advance(590)  # past the grace window, inside the lost-response window (600 s)
    assert ada.get("/api/me").status_code == 200
    assert cookie(ada, SESSION_COOKIE) == successor
    assert only_session().ended_at is None


def test_replay_after_successor_was_carried_and_grace_passed_revokes(ada, clock):
    stolen = Cookies.of(ada)
    expire_access(clock)
    assert ada.get("/account").status_code == 200  # legitimate rotation
    assert ada.get("/account").status_code == 200  # carries the successor
    clock.advance(31)
    thief = browser(ada.application)
    stolen.put(thief)
    response = thief.get("/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert cookie(thief, SESSION_COOKIE) is None and cookie(thief, ACCESS_COOKIE) is None
    assert only_session().end_reason == rules.REUSE_DETECTED
    assert SecurityEvent.select().where(SecurityEvent.kind == "reuse_detected").count() == 1
    # The legitimate holder is signed out on the very next request, access token unexpired.
    legit = ada.get("/account", follow_redirects=True)
    assert page(legit).find("h1").text == "Sign in to continue"
    (flash,) = page(legit).select('[data-flash="security"]')
    assert "sign-in cookie was used twice" in flash.text and "token" not in flash.text
    assert {a["href"] for a in flash.select("a")} == {"/account/password", "/password/forgot"}


def test_the_sessions_page_shows_the_reuse_reason_after_signing_in_again(ada, clock):
    from support import login

    stolen = Cookies.of(ada)
    expire_access(clock)
    ada.get("/account")
    ada.get("/account")
    clock.advance(31)
    thief = browser(ada.application)
    stolen.put(thief)
    thief.get("/account")
    login(ada)
    ended = page(ada.get("/sessions")).select('[data-end-reason="reuse_detected"]')
    assert len(ended) == 1
    assert words.USED_TWICE in ended[0].text and "token" not in ended[0].text
    # What to do about it, and the session's own timeline.
    timeline = f"/sessions/{ended[0]['data-ended-session-id']}"
    assert {a["href"] for a in ended[0].select("a")} == {"/account/password", "/password/forgot",
                                                        timeline}


def test_any_older_value_revokes_even_within_the_grace_window(ada, clock):
    first = Cookies.of(ada)
    for _ in range(2):
        expire_access(clock)
        ada.get("/account")
    assert only_session().generation == 2
    replay = browser(ada.application)
    Cookies(None, first.session).put(replay)
    assert replay.get("/api/me").status_code == 401
    assert only_session().end_reason == rules.REUSE_DETECTED


@pytest.mark.parametrize("path", ["common", "locked"])
def test_a_failure_in_the_middle_of_a_rotation_leaves_the_old_value_working(ada, clock,
                                                                             monkeypatch, path):
    """The swap is written, then the successor's token cannot be (its hash is already taken,
    planted by the test): the database undoes the whole rotation, on the common path (one
    statement on PostgreSQL) and under the row lock alike."""
    if path == "locked":
        monkeypatch.setattr(engine(), "swap", lambda *args: False)
    stale = Cookies.of(ada)
    expire_access(clock)
    successor = tokens.successor_handle(KEYS, stale.session)
    planted = RefreshToken.create(
        token_hash=tokens.token_hash(tokens.refresh_token(KEYS, successor)),
        session=only_session(), generation=99, issued_at=0)
    assert ada.get("/api/me").status_code == 500
    assert RefreshToken.select().count() == 2  # the first and the planted: no successor
    assert only_session().generation == 0 and only_session().ended_at is None
    assert Cookies.of(ada).session == stale.session  # the failed response cleared nothing
    planted.delete_instance()
    assert ada.get("/api/me").status_code == 200
    assert only_session().generation == 1


def test_unknown_session_value_is_not_authenticated(client):
    Cookies(None, "not-a-real-handle").put(client)
    assert client.get("/api/me").status_code == 401
    assert not LoginSession.select().exists()


def test_idle_timeout_ends_the_session(make_app, clock):
    app = make_app(GATEHOUSE_SESSION_IDLE_TTL=600)
    client = browser(app)
    from support import signed_up

    signed_up(client)
    clock.advance(600 + 60)  # the idle limit, plus "last active" written once a minute
    assert client.get("/api/me").status_code == 401
    assert only_session().end_reason == rules.IDLE_TIMEOUT


def test_activity_keeps_a_session_alive_but_the_absolute_lifetime_ends_it(make_app, clock):
    app = make_app(GATEHOUSE_SESSION_IDLE_TTL=600, GATEHOUSE_SESSION_MAX_AGE=1800,
                   GATEHOUSE_ACCESS_TOKEN_TTL=300)
    client = browser(app)
    from support import signed_up

    signed_up(client)
    for _ in range(5):  # 25 minutes of activity, one request every 5 minutes
        clock.advance(300)
        assert client.get("/api/me").status_code == 200
    assert only_session().absolute_expires_at == only_session().created_at + 1800
    clock.advance(300)
    assert client.get("/api/me").status_code == 401
    assert only_session().end_reason == rules.EXPIRED


def test_session_cookie_never_outlives_the_absolute_lifetime(make_app, clock):
    app = make_app(GATEHOUSE_SESSION_MAX_AGE=1000, GATEHOUSE_ACCESS_TOKEN_TTL=300)
    client = browser(app)
    from support import login, register

    register(client)
    login(client)
    clock.advance(900)
    response = client.get("/api/me")
    ages = {h.split("=", 1)[0]: int(h.split("Max-Age=")[1].split(";")[0])
            for h in response.headers.getlist("Set-Cookie")}
    assert 99 <= ages[SESSION_COOKIE] <= 100 and 99 <= ages[ACCESS_COOKIE] <= 100  # 100 s left
    claims = jwt.decode(cookie(client, ACCESS_COOKIE), options={"verify_signature": False})
    assert clock.now + ages[ACCESS_COOKIE] <= claims["exp"]  # the cookie dies before the JWT


def test_logout_after_expiry_sets_no_fresh_cookies(ada, clock):
    expire_access(clock)
    response = submit(ada, "/logout", {}, form_page="/")
    auth = {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")
            if h.startswith((ACCESS_COOKIE, SESSION_COOKIE))}
    assert set(auth) == {ACCESS_COOKIE, SESSION_COOKIE}
    assert all("Max-Age=0" in header for header in auth.values())
    assert only_session().end_reason == rules.SIGNED_OUT


def test_a_bound_session_rotates_only_with_its_key_and_a_copy_ends_nothing(ada, clock):
    """A session bound to a key (DBSC, DPoP): its value without a proof from that key is
    refused and recorded with the address, on either path, and the session stays live for the
    key's holder."""
    session = only_session()
    with ada.application.app_context():
        config = settings.current()
        store.bind_key(session.id, "thumbprint-of-the-key", now=clock())
    expire_access(clock)
    handle = Cookies.of(ada).session
    thief = browser(ada.application)
    thief.environ_base["REMOTE_ADDR"] = "198.51.100.23"
    Cookies(None, handle).put(thief)
    assert thief.get("/api/me").status_code == 401
    with ada.application.app_context():
        with pytest.raises(rules.KeyProofMissing):
            use.rotate(handle, keys=settings.current().keys, policy=config.policy, now=clock(),
                       ip_address="198.51.100.24", proven_key="another-key")
        issued, principal = use.rotate(handle, keys=config.keys, policy=config.policy, now=clock(),
                                       proven_key="thumbprint-of-the-key")
    assert principal.session_id == session.id and only_session().ended_at is None
    assert issued.handle == tokens.successor_handle(KEYS, handle)
    refused = SecurityEvent.select().where(SecurityEvent.kind == "key_missing")
    assert sorted(e.ip_address for e in refused) == ["198.51.100.23", "198.51.100.24"]
    assert SecurityEvent.select().where(SecurityEvent.kind == "key_bound").count() == 1
