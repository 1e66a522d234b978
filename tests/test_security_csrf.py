"""Checklist group 3: every state-changing form refuses a missing, random or foreign CSRF token;
same-origin JSON needs the custom header; cross-site requests are refused; GET changes nothing."""

import logging
import secrets

import pytest
from support import PASSWORD, browser, csrf_token, login, register, signed_up

from app.models import LoginSession, SecurityEvent, User
from app.security import JSON_HEADER

NEW_PASSWORD = "an entirely different passphrase"


@pytest.fixture
def two_sessions(app):
    """ada signed in twice: ``main`` acts, ``phone`` is the session it could end."""
    main, phone = browser(app), browser(app)
    signed_up(main)
    login(phone)
    return main, phone, phone.get("/api/me").get_json()["session_id"]


def live_sessions() -> int:
    return LoginSession.select().where(LoginSession.ended_at.is_null()).count()


# name -> (path, form data, how to read the state the request would change)
FORMS = {
    "register": (lambda s: "/register", {"email": "new@example.com", "password": PASSWORD},
                 lambda s: User.select().count()),
    "login": (lambda s: "/login", {"email": "ada@example.com", "password": PASSWORD},
              lambda s: live_sessions()),
    "logout": (lambda s: "/logout", {}, lambda s: live_sessions()),
    "password": (lambda s: "/account/password",
                 {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                 lambda s: User.get(User.email == "ada@example.com").password_hash),
    "revoke": (lambda s: f"/sessions/{s}/revoke", {}, lambda s: live_sessions()),
    "revoke-others": (lambda s: "/sessions/revoke-others", {}, lambda s: live_sessions()),
}


def token_for(variant: str, client, app) -> dict:
    if variant == "missing":
        return {}
    if variant == "random":
        return {"csrf_token": secrets.token_urlsafe(40)}
    if variant == "foreign":  # a genuine token of another browser
        return {"csrf_token": csrf_token(browser(app).get("/login"))}
    return {"csrf_token": csrf_token(client.get("/sessions"))}


@pytest.mark.parametrize("variant", ["missing", "random", "foreign"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_state_changing_forms_refuse_a_bad_token(app, two_sessions, form, variant):
    main, _, phone_id = two_sessions
    client = browser(app) if form in ("register", "login") else main
    path, data, state = FORMS[form]
    before = state(phone_id)
    response = client.post(path(phone_id), data={**data, **token_for(variant, client, app)})
    assert response.status_code == 400
    assert state(phone_id) == before
    assert main.get("/api/me").status_code == 200


@pytest.mark.parametrize("form", sorted(FORMS))
def test_the_same_forms_work_with_the_right_token(app, two_sessions, form):
    """The control for the refusals above."""
    main, _, phone_id = two_sessions
    client = browser(app) if form in ("register", "login") else main
    path, data, state = FORMS[form]
    before = state(phone_id)
    token = csrf_token(client.get("/login" if client is not main else "/sessions"))
    response = client.post(path(phone_id), data={**data, "csrf_token": token})
    assert response.status_code == 302
    assert state(phone_id) != before


def test_a_token_from_before_sign_in_is_not_valid_after_it(client):
    register(client)
    stale = csrf_token(client.get("/login"))
    login(client)
    assert client.post("/logout", data={"csrf_token": stale}).status_code == 400
    assert client.get("/api/me").status_code == 200


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"}, {"Origin": "null"},
])
def test_cross_site_form_posts_are_refused_even_with_a_valid_token(ada, headers):
    token = csrf_token(ada.get("/sessions"))
    response = ada.post("/logout", data={"csrf_token": token}, headers=headers)
    assert response.status_code == 403
    assert ada.get("/api/me").status_code == 200


@pytest.mark.parametrize("headers", [
    {}, {JSON_HEADER: "0"}, {JSON_HEADER: "1", "Origin": "https://evil.example"},
    {JSON_HEADER: "1", "Sec-Fetch-Site": "cross-site"},
])
def test_json_state_changes_need_the_custom_header_and_the_same_origin(two_sessions, headers):
    main, phone, phone_id = two_sessions
    response = main.delete(f"/api/sessions/{phone_id}", headers=headers)
    assert response.status_code == 403
    assert phone.get("/api/me").status_code == 200
    text_plain = main.post(f"/api/sessions/{phone_id}", data="{}", content_type="text/plain",
                           headers={k: v for k, v in headers.items() if k != JSON_HEADER})
    assert text_plain.status_code in (403, 405) and phone.get("/api/me").status_code == 200


def test_json_state_change_from_the_site_itself_works(two_sessions):
    main, phone, phone_id = two_sessions
    response = main.delete(f"/api/sessions/{phone_id}",
                           headers={JSON_HEADER: "1", "Sec-Fetch-Site": "same-origin",
                                    "Origin": "http://localhost"})
    assert response.status_code == 204
    assert phone.get("/api/me").status_code == 401


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(("path", "status"), [
    ("/logout", 405), ("/sessions/{id}/revoke", 405), ("/sessions/{id}/name", 405),
    ("/sessions/revoke-others", 200),  # the page that asks first; only its POST acts
])
def test_get_never_changes_state(two_sessions, method, path, status):
    main, phone, phone_id = two_sessions
    response = main.open(path.format(id=phone_id), method=method)
    assert response.status_code == status
    assert main.get("/api/me").status_code == phone.get("/api/me").status_code == 200


def test_csrf_failures_are_recorded_without_the_token(ada, caplog):
    caplog.set_level(logging.DEBUG)
    forged = secrets.token_urlsafe(40)
    ada.post("/logout", data={"csrf_token": forged})
    token = csrf_token(ada.get("/sessions"))
    ada.post("/logout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"})
    events = list(SecurityEvent.select().where(SecurityEvent.kind == "csrf_failed"))
    assert len(events) == 2
    ada_id = User.get().id
    assert all(e.user_id == ada_id and e.detail.startswith("POST /logout") for e in events)
    assert all(e.ip_address == "203.0.113.7" for e in events)
    recorded = caplog.text + " ".join(e.detail for e in events)
    assert forged not in recorded and token not in recorded
    shown = ada.get("/sessions").get_data(as_text=True)
    assert shown.count("Refused a form from another site") == 2
