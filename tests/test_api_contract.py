"""The JSON API's contract at its edges: page numbers, a page past the end, the empty 204, a
password that is sent, malformed bodies, and times a script can read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support import PASSWORD, UA_PHONE, browser, login, submit

from app import words
from app.config import MAX_PAGE
from app.models import SecurityEvent

API = {"X-Gatehouse-Request": "1"}
WRONG = "not the password at all, sorry"


@pytest.fixture
def phone(ada):
    other = browser(ada.application, UA_PHONE)
    login(other)
    return other


def session_id(client) -> str:
    return client.get("/api/me").get_json()["session_id"]


def reauth_failures() -> int:
    return SecurityEvent.select().where(SecurityEvent.kind == "reauth_failed").count()


def bad_request(response) -> str:
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "message"} and body["error"] == "bad_request", body
    return body["message"]


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "", " 1", "1e3", "\u0661",
                                  "9" * 5000])
def test_a_page_that_is_no_whole_number_from_1_is_a_400(ada, page):
    """It once answered page 1 as if nothing were wrong."""
    message = bad_request(ada.get("/api/sessions", query_string={"page": page}))
    assert message == "The page must be a whole number, 1 or more."


def test_a_page_past_the_end_is_empty(ada, phone):
    first = ada.get("/api/sessions?page=1").get_json()
    assert len(first["sessions"]) == 2 and first["next_page"] is None
    for number in (2, MAX_PAGE, MAX_PAGE + 1, 10**30):
        past = ada.get(f"/api/sessions?page={number}")
        assert past.status_code == 200
        # Never the last page again under another number (it once answered page 50).
        assert past.get_json() == {"sessions": [], "page": number, "next_page": None}
    assert ada.get("/api/sessions").get_json() == first  # no page is page 1


def test_a_204_has_no_content_type(ada, phone):
    response = ada.delete(f"/api/sessions/{session_id(phone)}", headers=API)
    assert response.status_code == 204 and response.get_data() == b""
    assert "Content-Type" not in response.headers  # it once said text/html
    assert phone.get("/api/me").status_code == 401


def test_a_wrong_password_sent_inside_the_window_is_checked(ada, phone):
    """Inside the re-authentication window no password is needed, but one that is sent is
    checked: a wrong one is refused and counted, never quietly ignored (it answered 204)."""
    target = f"/api/sessions/{session_id(phone)}"
    wrong = ada.delete(target, json={"password": WRONG}, headers=API)
    assert wrong.status_code == 403
    assert wrong.get_json() == {"error": "reauthentication_required",
                                "message": "That password is not right."}
    assert reauth_failures() == 1 and phone.get("/api/me").status_code == 200
    # Signing out this very device needs none; one that is sent is checked all the same.
    mine = f"/api/sessions/{session_id(ada)}"
    assert ada.delete(mine, json={"password": WRONG}, headers=API).status_code == 403
    assert reauth_failures() == 2 and ada.get("/api/me").status_code == 200
    assert ada.delete(target, json={"password": PASSWORD}, headers=API).status_code == 204
    assert phone.get("/api/me").status_code == 401


def test_a_wrong_password_posted_inside_the_window_is_checked_on_the_page_too(ada, phone):
    target = session_id(phone)
    response = submit(ada, f"/sessions/{target}/revoke", {"password": WRONG},
                      form_page="/sessions")
    assert response.status_code == 401 and "That password is not right." in response.text
    assert reauth_failures() == 1 and phone.get("/api/me").status_code == 200


@pytest.mark.parametrize("body, content_type, message", [
    ("not json", "application/json", "Send the body as a JSON object"),
    ('{"password": "x"', "application/json", "Send the body as a JSON object"),
    ('["a", "list"]', "application/json", "Send the body as a JSON object"),
    ('{"password": "' + PASSWORD + '"}', "text/plain", "Send the body as a JSON object"),
    ('{"password": 12345}', "application/json", "The password must be a string."),
    ('{"password": ["x"]}', "application/json", "The password must be a string."),
])
def test_a_malformed_body_is_a_400(ada, phone, body, content_type, message):
    response = ada.delete(f"/api/sessions/{session_id(phone)}", data=body,
                          headers={**API, "Content-Type": content_type})
    assert bad_request(response).startswith(message)
    assert phone.get("/api/me").status_code == 200 and reauth_failures() == 0


def test_an_empty_body_or_one_without_a_password_is_no_password(ada, phone):
    assert ada.delete(f"/api/sessions/{session_id(phone)}", json={"other": 1},
                      headers=API).status_code == 204


def test_times_come_as_iso_8601_too(ada, phone):
    """UNIX seconds for arithmetic, ISO 8601 in UTC for people and ``Date.parse``."""
    for session in ada.get("/api/sessions").get_json()["sessions"]:
        for name in ("signed_in_at", "last_active_at", "expires_at"):
            seconds, text = session[name], session[f"{name}_iso"]
            assert text == words.iso(seconds) and text.endswith("Z")
            parsed = datetime.fromisoformat(text)
            assert parsed.tzinfo is not None and parsed.utcoffset().total_seconds() == 0
            assert abs(parsed.timestamp() - seconds) < 1
            assert parsed == datetime.fromtimestamp(int(seconds), UTC)
