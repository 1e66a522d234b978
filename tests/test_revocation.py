"""Immediate revocation survives the hot path's shortcuts: a worker that has verified an
access token many times (memoising its signature) still refuses it on the very next request
after its session is revoked."""

from __future__ import annotations

import json

import pytest
from servers import Server, post_form, server_env, sign_up
from support import PASSWORD, SECRET, UA_PHONE, Cookies, browser, login

from app import tokens
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE

API = {"X-Gatehouse-Request": "1"}


def test_revocation_refuses_a_token_this_worker_has_verified_many_times(app, ada, monkeypatch):
    verified = []
    decode = tokens.decode_access
    monkeypatch.setattr(tokens, "decode_access", lambda *a, **k: verified.append(1) or
                        decode(*a, **k))
    presented = Cookies.of(ada)
    for _ in range(50):
        assert ada.get("/api/me").status_code == 200
    mine = ada.get("/api/me").get_json()["session_id"]
    assert len(verified) == 1, "the signature is verified once, then served from the memo"

    phone = browser(app, UA_PHONE)
    login(phone)
    assert phone.delete(f"/api/sessions/{mine}", headers=API,
                        json={"password": PASSWORD}).status_code == 204

    presented.put(ada)  # the same access token, still unexpired and still in the memo
    response = ada.get("/api/me")
    assert response.status_code == 401
    assert response.get_json()["reason"] == "revoked"


def test_json_calls_never_decode_the_flask_session_cookie(ada, monkeypatch):
    """The Flask session cookie is read lazily: a call that never touches it neither verifies
    and decodes it nor re-sets it; a page (which shows flashed messages) does read it."""
    from flask.sessions import SecureCookieSessionInterface

    decoded = []
    original = SecureCookieSessionInterface.open_session
    monkeypatch.setattr(SecureCookieSessionInterface, "open_session",
                        lambda self, app, request: decoded.append(1) or original(self, app,
                                                                                  request))
    ada.get("/account")  # its sign-out form puts a CSRF secret in the Flask cookie
    assert ada.get_cookie("__Host-flask") is not None
    decoded.clear()
    response = ada.get("/api/me")
    assert response.status_code == 200 and decoded == []
    assert not any("__Host-flask" in v for v in response.headers.getlist("Set-Cookie"))
    assert ada.get("/account").status_code == 200 and decoded == [1]


@pytest.mark.slow
def test_revocation_through_a_real_worker_that_cached_the_token(database_url, make_app):
    make_app()  # creates the schema (and empties it afterwards, for PostgreSQL)
    with Server(server_env(database_url, SECRET), workers=1) as server:
        jar = sign_up(server, "ada@example.com", PASSWORD)
        cookies = {ACCESS_COOKIE: jar[ACCESS_COOKIE], SESSION_COOKIE: jar[SESSION_COOKIE]}
        for _ in range(30):  # one worker: every one of these was served by the same process
            assert server.request("GET", "/api/me", cookies=cookies).status == 200
        me = server.request("GET", "/api/me", cookies=cookies)
        session_id = json.loads(me.body)["session_id"]
        phone: dict[str, str] = {}  # a second browser signs in and signs the first one out
        post_form(server, "/login", {"email": "ada@example.com", "password": PASSWORD}, phone)
        revoked = server.request("DELETE", f"/api/sessions/{session_id}", cookies=phone,
                                 headers={**API, "Content-Type": "application/json"},
                                 body=json.dumps({"password": PASSWORD}).encode())
        assert revoked.status == 204, revoked.body
        refused = server.request("GET", "/api/me", cookies=cookies)
        assert refused.status == 401
        assert json.loads(refused.body)["reason"] == "revoked"
