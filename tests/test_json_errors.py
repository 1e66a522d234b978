"""Every JSON error has one shape: ``{"error": <machine code>, "message": <sentence>}``, plus
``reason`` when the caller's session has just ended."""

from __future__ import annotations

import re

import pytest
from support import PASSWORD, browser, signed_up

from app import words
from app.sessions import rules
from app.words import in_words

API = {"X-Gatehouse-Request": "1"}


@pytest.fixture
def app(make_app):
    app = make_app(GATEHOUSE_SESSION_LIMIT_IP=1)

    @app.get("/api/__boom")
    def boom():
        raise RuntimeError("a bug")

    return app


def error_of(response, status: int, code: str, *, reason: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "message"} | ({"reason"} if reason else set()), body
    assert body["error"] == code
    assert re.fullmatch(r"[A-Z][^_]+[.?!]", body["message"]), body["message"]
    assert body.get("reason") == reason
    return body


def session_id(client) -> str:
    return client.get("/api/me").get_json()["session_id"]


def test_400_for_each_malformed_request_the_table_names(app, ada):
    """The README's 400 row, case by case: a page that is no whole number from 1, a body
    that is not a JSON object or whose password is not a string, a Host that is no host."""
    error_of(ada.get("/api/sessions?page=abc"), 400, "bad_request")
    target = f"/api/sessions/{session_id(ada)}"
    error_of(ada.delete(target, data="{", content_type="application/json", headers=API), 400,
             "bad_request")
    error_of(ada.delete(target, json={"password": 1}, headers=API), 400, "bad_request")
    error_of(ada.get("/api/me", headers={"Host": "a..b"}), 400, "bad_request")


def test_401_when_nobody_is_signed_in(client):
    error_of(client.get("/api/me"), 401, "not_authenticated")


def test_401_with_the_reason_when_the_session_was_ended_elsewhere(app, ada):
    phone = browser(app)
    signed_up(phone, "ada@example.com")  # registering again changes nothing; this signs in
    target = session_id(phone)
    assert ada.delete(f"/api/sessions/{target}", headers=API).status_code == 204
    body = error_of(phone.get("/api/me"), 401, "not_authenticated",
                    reason=rules.REVOKED)
    assert body["message"] == words.end_reason(rules.REVOKED).message


def test_403_for_a_call_without_the_sites_header(ada):
    error_of(ada.delete(f"/api/sessions/{session_id(ada)}"), 403, "cross_site")


def test_403_when_the_password_must_be_entered_again(app, ada, clock):
    phone = browser(app)
    signed_up(phone, "ada@example.com")
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    target = session_id(phone)
    error_of(ada.delete(f"/api/sessions/{target}", headers=API), 403,
             "reauthentication_required")
    confirmed = ada.delete(f"/api/sessions/{target}", json={"password": PASSWORD}, headers=API)
    assert confirmed.status_code == 204


def test_404_for_no_such_address_or_session(ada):
    error_of(ada.get("/api/nothing-here"), 404, "not_found")
    error_of(ada.delete("/api/sessions/AAAAAAAAAAAAAAAAAAAAAA", headers=API), 404, "not_found")


def test_405_for_a_method_the_address_does_not_take(ada):
    error_of(ada.post("/api/me", headers=API), 405, "method_not_allowed")


def test_413_for_a_body_over_the_cap(app, ada, clock):
    phone = browser(app)
    signed_up(phone, "ada@example.com")
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] + 1)  # so that the body is read
    big = {"password": "x" * (ada.application.config["MAX_CONTENT_LENGTH"] + 1)}
    error_of(ada.delete(f"/api/sessions/{session_id(phone)}", json=big, headers=API), 413,
             "request_too_large")


def test_429_once_unknown_session_values_are_used_up(client):
    client.set_cookie("__Host-session", "guessed-value-1")
    error_of(client.get("/api/me"), 401, "not_authenticated")
    client.set_cookie("__Host-session", "guessed-value-2")
    response = client.get("/api/me")
    body = error_of(response, 429, "too_many_attempts")
    wait = int(response.headers["Retry-After"])
    assert body["message"] == f"Too many attempts. Try again in {in_words(wait)}."


def test_503_when_the_database_does_not_answer(ada, database_down):
    database_down()
    error_of(ada.get("/api/me"), 503, "unavailable")


def test_500_names_a_reference_and_nothing_else(ada):
    body = error_of(ada.get("/api/__boom"), 500, "internal_error")
    assert "RuntimeError" not in body["message"] and "bug" not in body["message"]
    assert re.search(r"Reference [0-9a-f]{12}\.$", body["message"])
