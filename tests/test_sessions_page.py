"""The sessions page and immediate revocation, with two browsers of one person (and a stranger)."""

import pytest
from support import UA_PHONE, browser, login, page, signed_up, submit

from app.models import LoginSession
from app.sessions import rules


@pytest.fixture
def phone(ada):
    other = browser(ada.application, UA_PHONE)
    login(other)
    return other


def session_id(client) -> str:
    return client.get("/api/me").get_json()["session_id"]


def test_each_live_session_is_listed_with_its_facts(ada, phone):
    html = page(ada.get("/sessions"))
    rows = html.select("[data-session-id]")
    assert {row["data-session-id"] for row in rows} == {session_id(ada), session_id(phone)}
    current = html.select('[data-current="true"]')
    assert [row["data-session-id"] for row in current] == [session_id(ada)]
    texts = {row["data-session-id"]: row.get_text(" ", strip=True) for row in rows}
    assert "Firefox 128 on Ubuntu" in texts[session_id(ada)]
    assert "Mobile Safari 17 on iOS" in texts[session_id(phone)]
    for text in texts.values():
        assert "203.0.113.7" in text and "Signed in" in text and "Expires" in text


def test_revoking_another_session_stops_its_unexpired_access_token_at_once(ada, phone):
    target = session_id(phone)
    response = submit(ada, f"/sessions/{target}/revoke", {}, form_page="/sessions")
    assert response.status_code == 302
    assert phone.get("/api/me").status_code == 401
    landed = phone.get("/account", follow_redirects=True)
    assert "signed out from another device" in landed.get_data(as_text=True)
    ended = page(ada.get("/sessions")).select(f'[data-ended-session-id="{target}"]')
    assert ended and ended[0]["data-end-reason"] == rules.REVOKED
    assert ada.get("/api/me").status_code == 200


def test_password_change_ends_every_other_session(ada, phone):
    response = submit(ada, "/account/password", {
        "current_password": "correct horse battery staple",
        "new_password": "a brand new passphrase for ada"})
    assert response.status_code == 302
    assert phone.get("/api/me").status_code == 401
    assert ada.get("/api/me").status_code == 200
    ended = LoginSession.select().where(LoginSession.ended_at.is_null(False))
    reasons = {s.end_reason for s in ended}
    assert reasons == {rules.PASSWORD_CHANGED}
    assert login(phone, password="a brand new passphrase for ada").status_code == 302


def test_password_change_needs_the_current_password(ada, phone):
    response = submit(ada, "/account/password", {
        "current_password": "not my password at all!!",
        "new_password": "a brand new passphrase for ada"})
    assert response.status_code == 200
    assert "not your current password" in response.get_data(as_text=True)
    assert phone.get("/api/me").status_code == 200


def test_markup_in_a_user_agent_is_shown_escaped(ada):
    evil = browser(ada.application, "<script>alert(1)</script>")
    login(evil)
    body = ada.get("/sessions").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_one_person_cannot_see_or_revoke_anothers_session(ada, app):
    grace = browser(app)
    signed_up(grace, "grace@example.com")
    theirs = session_id(grace)
    assert theirs not in ada.get("/sessions").get_data(as_text=True)
    assert theirs not in ada.get("/api/sessions").get_data(as_text=True)
    response = submit(ada, f"/sessions/{theirs}/revoke", {}, form_page="/sessions")
    assert response.status_code == 404
    api = ada.delete(f"/api/sessions/{theirs}", headers={"X-Gatehouse-Request": "1"})
    assert api.status_code == 404
    assert grace.get("/api/me").status_code == 200


def test_api_lists_and_deletes_sessions(ada, phone):
    listed = ada.get("/api/sessions").get_json()["sessions"]
    assert {s["id"] for s in listed} == {session_id(ada), session_id(phone)}
    assert [s["current"] for s in listed if s["id"] == session_id(ada)] == [True]
    target = session_id(phone)
    response = ada.delete(f"/api/sessions/{target}", headers={"X-Gatehouse-Request": "1"})
    assert response.status_code == 204
    assert phone.get("/api/me").status_code == 401


def test_api_answers_401_json_not_a_redirect(client):
    response = client.get("/api/sessions")
    assert response.status_code == 401 and response.is_json


def test_protected_page_redirects_to_sign_in_with_next(client):
    response = client.get("/sessions")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/sessions"

