"""Checklist groups 6, 10 and 11: session fixation, re-keying, re-authentication, security
events and secret-free logs, and failing closed when the database or the configuration is bad."""

import logging
import secrets

import pytest
from support import (
    PASSWORD,
    SECRET,
    Cookies,
    browser,
    cookie,
    csrf_token,
    login,
    register,
    signed_up,
    submit,
)

from app import audit, config, create_app, tokens
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.models import LoginSession, RefreshToken, SecurityEvent, User

NEW_PASSWORD = "an entirely different passphrase"


def session_id(client) -> str | None:
    response = client.get("/api/me")
    return response.get_json()["session_id"] if response.status_code == 200 else None


# --- group 6: session lifecycle -----------------------------------------------------------


def test_sign_in_discards_planted_cookies(app):
    """Session fixation: whatever the browser held before sign-in is replaced, a validly
    signed Flask cookie carrying a planted CSRF secret included."""
    victim = browser(app)
    register(victim)
    serializer = app.session_interface.get_signing_serializer(app)
    planted = {ACCESS_COOKIE: "eyJhbGciOiJub25lIn0.e30.", SESSION_COOKIE: secrets.token_urlsafe(32),
               "__Host-flask": serializer.dumps({"csrf_token": "planted-secret"})}
    for name, value in planted.items():
        victim.set_cookie(name, value)
    assert login(victim).status_code == 302
    for name, value in planted.items():
        assert cookie(victim, name) != value, name
    assert victim.get("/account").status_code == 200  # renders a form: a CSRF secret again
    secret = serializer.loads(cookie(victim, "__Host-flask"))["csrf_token"]
    assert secret and secret != "planted-secret"
    assert victim.get("/api/me").get_json()["email"] == "ada@example.com"


def test_sign_in_over_an_attackers_planted_session_starts_a_fresh_one(app):
    attacker = browser(app)
    signed_up(attacker, "eve@example.com")
    planted = Cookies.of(attacker)
    victim = browser(app)
    register(victim)
    planted.put(victim)
    login(victim)
    assert victim.get("/api/me").get_json()["email"] == "ada@example.com"
    assert Cookies.of(victim).session != planted.session
    planted.put(attacker)
    assert attacker.get("/api/me").status_code == 401  # and cannot ride the victim's session


@pytest.mark.parametrize("action", ["password", "revoke-others"])
def test_ending_other_sessions_also_rekeys_this_one(app, clock, action):
    main, phone = browser(app), browser(app)
    signed_up(main)
    login(phone)
    copy, copied_id = Cookies.of(main), session_id(main)
    clock.advance(2)
    if action == "password":
        response = submit(main, "/account/password",
                          {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    else:
        response = submit(main, "/sessions/revoke-others", {}, form_page="/sessions")
    assert response.status_code == 302
    assert phone.get("/api/me").status_code == 401
    assert session_id(main) == copied_id  # still signed in, same session, new cookies
    assert Cookies.of(main).session != copy.session
    thief = browser(app)
    copy.put(thief)
    assert thief.get("/api/me").status_code == 401  # the copied access token is refused too
    thief.delete_cookie(ACCESS_COOKIE)
    assert thief.get("/api/me").status_code == 401
    assert main.get("/api/me").status_code == 200


def test_sensitive_actions_ask_for_the_password_after_the_window(app, clock):
    main, phone = browser(app), browser(app)
    signed_up(main)
    login(phone)
    phone_id = session_id(phone)
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    for password, status in ((None, 200), ("wrong password entirely", 401)):
        data = {} if password is None else {"password": password}
        response = submit(main, f"/sessions/{phone_id}/revoke", data, form_page="/sessions")
        assert response.status_code == status and "Confirm it's you" in response.text
        assert phone.get("/api/me").status_code == 200
    api = main.delete(f"/api/sessions/{phone_id}", json={"password": "wrong again, twice"},
                      headers={"X-Gatehouse-Request": "1"})
    assert api.status_code == 403 and phone.get("/api/me").status_code == 200
    # Each wrong password counts toward throttling like a sign-in, recorded as what it was.
    failures = SecurityEvent.select().where(SecurityEvent.kind == "reauth_failed").count()
    assert failures == 2
    assert not SecurityEvent.select().where(SecurityEvent.kind == "sign_in_failed").exists()
    submit(main, f"/sessions/{phone_id}/revoke", {"password": PASSWORD}, form_page="/sessions")
    assert phone.get("/api/me").status_code == 401


def test_within_the_window_no_password_is_asked(app, clock):
    main, phone = browser(app), browser(app)
    signed_up(main)
    login(phone)
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] - 5)
    submit(main, "/sessions/revoke-others", {}, form_page="/sessions")
    assert phone.get("/api/me").status_code == 401


# --- group 10: security events and logs ---------------------------------------------------


def kinds(user_email: str | None = "ada@example.com") -> list[str]:
    query = SecurityEvent.select().order_by(SecurityEvent.id)
    if user_email:
        query = query.where(SecurityEvent.user == User.get(User.email == user_email))
    return [e.kind for e in query]


def test_each_security_decision_is_recorded(make_app, clock, caplog):
    caplog.set_level(logging.INFO, logger="gatehouse.security")
    app = make_app(GATEHOUSE_ACCESS_TOKEN_TTL=1, GATEHOUSE_LOGIN_LIMIT_ACCOUNT=2)
    main, phone = browser(app), browser(app)
    signed_up(main)
    login(main, password="wrong password entirely")
    login(phone)
    stale = Cookies.of(main)
    clock.advance(10)
    main.get("/account")  # rotation
    clock.advance(60)
    main.get("/account")  # the successor is carried, so the stale value is now reuse
    thief = browser(app)
    stale.put(thief)
    thief.delete_cookie(ACCESS_COOKIE)
    thief.get("/account")  # reuse detected: main's session ends
    signed_up_again = login(main)
    assert signed_up_again.status_code == 302
    submit(main, f"/sessions/{session_id(phone)}/revoke", {}, form_page="/sessions")
    submit(main, "/account/password", {"current_password": PASSWORD,
                                        "new_password": NEW_PASSWORD})
    main.post("/logout", data={"csrf_token": "forged"})
    submit(main, "/logout", {}, form_page="/account")
    login(main, password="wrong 1 for sure ok")
    login(main, password="wrong 2 for sure ok")
    login(main, password=NEW_PASSWORD)
    recorded = kinds()
    for kind in ("registered", "sign_in", "sign_in_failed", "reuse_detected", "revoked",
                 "password_changed", "csrf_failed", "signed_out"):
        assert kind in recorded, kind
    assert audit.anonymous_count("throttled") == 1  # signed out: counted, not a row
    revoked = SecurityEvent.get(SecurityEvent.kind == "revoked")
    assert revoked.detail.startswith("session ") and " ended by session " in revoked.detail
    assert revoked.ip_address == "203.0.113.7"
    assert '"event": "rotated"' in caplog.text and '"at": "' in caplog.text
    assert "rotated" not in recorded  # a log line per rotation, not a row


def test_people_see_their_own_events_and_nobody_elses(app):
    ada, eve = browser(app), browser(app)
    signed_up(ada)
    signed_up(eve, "eve@example.com")
    login(browser(app), "eve@example.com", "wrong password entirely")
    html = ada.get("/sessions").get_data(as_text=True)
    assert 'data-event="sign_in"' in html and 'data-event="registered"' in html
    assert 'data-event="sign_in_failed"' not in html
    eve_html = eve.get("/sessions").get_data(as_text=True)
    assert 'data-event="sign_in_failed"' in eve_html


def test_a_full_flow_at_debug_level_logs_no_secret(make_app, clock, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("peewee", "werkzeug", "gatehouse", "flask_wtf", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    app = make_app(GATEHOUSE_ACCESS_TOKEN_TTL=1)
    wrong = "this is the wrong password"
    client = browser(app)
    secrets_used = {PASSWORD, NEW_PASSWORD, wrong, SECRET}
    register(client)
    secrets_used.add(csrf_token(client.get("/login")))
    login(client, password=wrong)
    login(client)
    keys = tokens.Keys.derive(SECRET)
    for _ in range(3):
        cookies = Cookies.of(client)
        secrets_used |= {cookies.access, cookies.session, cookie(client, "__Host-flask"),
                         tokens.refresh_token(keys, cookies.session)}
        clock.advance(10)
        client.get("/sessions")
    secrets_used |= stored_hashes()  # the hash the password change replaces, too
    page_token = csrf_token(client.get("/account/password"))
    secrets_used.add(page_token)
    client.post("/account/password", data={"csrf_token": page_token,
                                            "current_password": PASSWORD,
                                            "new_password": NEW_PASSWORD})
    secrets_used |= {cookie(client, ACCESS_COOKIE), cookie(client, SESSION_COOKIE)}
    client.post("/logout", data={"csrf_token": "forged-token-value-123"})
    secrets_used.add("forged-token-value-123")
    submit(client, "/logout", {}, form_page="/account")
    secrets_used |= stored_hashes()
    logged = [caplog.text] + [r.getMessage() + repr(r.args) for r in caplog.records]
    assert any("SELECT" in line for line in logged), "peewee's SQL log was not captured"
    assert any("INSERT" in line for line in logged), "peewee's SQL log was not captured"
    leaks = {s for s in secrets_used if s and any(s in line for line in logged)}
    assert leaks == set()


def stored_hashes() -> set[str]:
    """Every hash of a secret the database holds: argon2 hashes (whole, and the digest alone),
    refresh-token hashes, the sessions' current ones; a hash is as good as its secret to
    someone who can test guesses against it offline."""
    found = set()
    for user in User.select():
        found |= {user.password_hash, user.password_hash.rsplit("$", 1)[-1]}
    found |= {token.token_hash for token in RefreshToken.select()}
    found |= {session.current_hash for session in LoginSession.select()}
    assert len(found) >= 4, "the flow stored fewer hashes than it should have"
    return found


# --- group 11: fail closed ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/account", "/sessions", "/api/me", "/api/sessions"])
@pytest.mark.parametrize("access", ["valid", "expired"])
def test_protected_pages_answer_503_and_set_no_cookie(ada, clock, database_down, path, access):
    if access == "expired":
        clock.advance(ada.application.config["GATEHOUSE_ACCESS_TOKEN_TTL"] + 10)
    database_down()
    response = ada.get(path)
    assert response.status_code == 503
    assert response.headers.getlist("Set-Cookie") == []
    assert "ada@example.com" not in response.get_data(as_text=True)


def test_sign_in_with_the_database_down_sets_no_auth_cookie(client, database_down):
    register(client)
    token = csrf_token(client.get("/login"))
    database_down()
    response = client.post("/login", data={"csrf_token": token, "email": "ada@example.com",
                                           "password": PASSWORD})
    assert response.status_code == 503
    assert ACCESS_COOKIE not in str(response.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize("secret", ["", "short", "changeme", "secret", "x" * 31])
def test_production_refuses_a_missing_short_or_default_secret(tmp_path, secret):
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        config.load({"SECRET_KEY": secret}, str(tmp_path), environ={})


def test_production_refuses_debug_mode(tmp_path, monkeypatch):
    settings = {"SECRET_KEY": SECRET, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    with pytest.raises(config.ConfigError, match="debug"):
        create_app({**settings, "DEBUG": True})
    monkeypatch.setenv("FLASK_DEBUG", "1")
    with pytest.raises(config.ConfigError, match="debug"):
        create_app(settings)


def test_production_starts_with_a_strong_secret(tmp_path):
    loaded = config.load({"SECRET_KEY": SECRET, "GATEHOUSE_EMAIL_VERIFICATION": "off"},
                         str(tmp_path), environ={})
    assert loaded["SECRET_KEY"] == SECRET and loaded["GATEHOUSE_ENV"] == "production"
