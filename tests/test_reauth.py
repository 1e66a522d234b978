"""Re-authentication: asked once, on a page of its own, only when an action needs it and the
password was last entered longer ago than the window; never for signing out this device."""

import pytest
from support import PASSWORD, UA_PHONE, browser, csrf_token, login, page, signed_up, submit

from app.models import SecurityEvent

API = {"X-Gatehouse-Request": "1"}
WRONG = "not the password at all, sorry"


@pytest.fixture
def phone(ada):
    other = browser(ada.application, UA_PHONE)
    login(other)
    return other


@pytest.fixture
def late(ada, app, clock):
    """Past the re-authentication window since ada last typed her password."""
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] + 1)


def session_id(client) -> str:
    return client.get("/api/me").get_json()["session_id"]


def events(kind: str) -> int:
    return SecurityEvent.select().where(SecurityEvent.kind == kind).count()


def ask(ada, path: str, data: dict | None = None):
    """Post the sessions page's form to ``path``; the answer is the confirmation page."""
    response = submit(ada, path, data or {}, form_page="/sessions")
    assert response.status_code == 200
    html = page(response)
    assert html.h1.get_text(strip=True) == "Confirm it's you"
    return html


def confirm(ada, html, password: str):
    """Submit the confirmation page's own form, as a browser would."""
    form = html.select_one('[data-test="reauth"] form')
    fields = {box["name"]: box.get("value", "") for box in form.select("input[name]")}
    return ada.post(form["action"], data={**fields, "password": password})


def test_inside_the_window_nothing_is_asked(ada, phone):
    response = submit(ada, f"/sessions/{session_id(phone)}/revoke", {}, form_page="/sessions")
    assert response.status_code == 302 and phone.get("/api/me").status_code == 401


def test_the_sessions_page_has_no_password_boxes(ada, phone, late):
    assert page(ada.get("/sessions")).select('input[type="password"]') == []


def test_a_wrong_password_is_marked_then_the_right_one_acts_at_once(ada, phone, late):
    target = session_id(phone)
    html = ask(ada, f"/sessions/{target}/revoke")
    assert "sign out that session" in html.get_text()
    assert phone.get("/api/me").status_code == 200

    wrong = confirm(ada, html, WRONG)
    assert wrong.status_code == 401 and phone.get("/api/me").status_code == 200
    html = page(wrong)
    box = html.select_one("#password")
    assert box["aria-invalid"] == "true"
    error = html.select_one(f"#{box['aria-describedby'].split()[-1]}")
    assert error.get_text(strip=True) == "That password is not right."
    assert events("reauth_failed") == 1 and events("sign_in_failed") == 0

    done = confirm(ada, html, PASSWORD)
    assert done.status_code == 302 and done.headers["Location"] == "/sessions"
    assert phone.get("/api/me").status_code == 401
    assert events("reauthenticated") == 1


def test_once_confirmed_the_window_starts_again(ada, app, late):
    first, second = browser(app), browser(app)
    login(first)
    login(second)
    confirm(ada, ask(ada, f"/sessions/{session_id(first)}/revoke"), PASSWORD)
    again = submit(ada, f"/sessions/{session_id(second)}/revoke", {}, form_page="/sessions")
    assert again.status_code == 302 and second.get("/api/me").status_code == 401


def test_the_page_carries_the_forms_fields_under_a_fresh_token(ada, phone, late):
    html = ask(ada, "/sessions/revoke-others", {"keep": "a<b"})
    form = html.select_one('[data-test="reauth"] form')
    assert form["action"] == "/sessions/revoke-others"
    hidden = [(box["name"], box["value"]) for box in form.select('input[type="hidden"]')]
    assert [name for name, _ in hidden] == ["csrf_token", "keep"] and hidden[1][1] == "a<b"
    # An empty password is asked for again, with the reason, and counts nothing.
    empty = confirm(ada, html, "")
    assert empty.status_code == 401
    html = page(empty)
    assert html.select_one("#password-error").get_text(strip=True) == "Enter your password."
    assert events("reauth_failed") == 0
    assert confirm(ada, html, PASSWORD).status_code == 302
    assert phone.get("/api/me").status_code == 401


def test_signing_out_this_device_never_asks(ada, phone, late):
    response = submit(ada, f"/sessions/{session_id(ada)}/revoke", {}, form_page="/sessions")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert ada.get("/api/me").status_code == 401
    token = csrf_token(phone.get("/account"))  # the header's button, past the window too
    assert phone.post("/logout", data={"csrf_token": token}).status_code == 302
    assert phone.get("/api/me").status_code == 401


def test_json_keeps_its_contract(ada, phone, late):
    target = f"/api/sessions/{session_id(phone)}"
    missing = ada.delete(target, headers=API)
    assert missing.status_code == 403
    assert missing.get_json() == {"error": "reauthentication_required",
                                  "message": "Enter your password to confirm it's you."}
    wrong = ada.delete(target, json={"password": WRONG}, headers=API)
    assert wrong.status_code == 403
    assert wrong.get_json()["message"] == "That password is not right."
    assert events("reauth_failed") == 1 and phone.get("/api/me").status_code == 200
    assert ada.delete(target, json={"password": PASSWORD}, headers=API).status_code == 204
    assert phone.get("/api/me").status_code == 401


def test_json_signing_out_this_device_needs_no_password(ada, late):
    assert ada.delete(f"/api/sessions/{session_id(ada)}", headers=API).status_code == 204
    assert ada.get("/api/me").status_code == 401


def test_wrong_confirmations_are_throttled_like_sign_in(make_app, clock):
    app = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=3)
    ada, phone = browser(app), browser(app)
    signed_up(ada)
    login(phone)
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    html = ask(ada, f"/sessions/{session_id(phone)}/revoke")
    for _ in range(3):
        response = confirm(ada, html, WRONG)
        assert response.status_code == 401
        html = page(response)
    throttled = confirm(ada, html, PASSWORD)
    assert throttled.status_code == 429 and phone.get("/api/me").status_code == 200
    assert page(throttled).select_one('[data-test="way-back"]')["href"] == "/account"
    assert events("reauth_failed") == 3


def test_a_wrong_current_password_on_the_password_form_has_its_own_event(ada):
    response = submit(ada, "/account/password", {"current_password": WRONG,
                                                 "new_password": "a brand new passphrase"})
    assert response.status_code == 200
    assert events("current_password_failed") == 1 and events("sign_in_failed") == 0


@pytest.mark.parametrize("query", ["_scheme=", "_anchor=top", "_method=GET", "_external=1",
                                   "_scheme=https&_external=1", "a=1&a=2&b=%3F%23"])
def test_the_confirmation_form_posts_back_to_a_path_whatever_the_query(ada, phone, late, query):
    """The query is carried, never handed to ``url_for`` as its own arguments: ``_scheme``,
    ``_anchor`` and ``_method`` once made the page a 500, and ``_external=1`` built the form's
    action from the Host header."""
    path = f"/sessions/{session_id(phone)}/revoke"
    token = csrf_token(ada.get("/sessions"))
    response = ada.post(f"{path}?{query}", data={"csrf_token": token},
                        headers={"Host": "localhost:8443"})  # a jar keeps cookies by host
    assert response.status_code == 200
    form = page(response).select_one('[data-test="reauth"] form')
    assert form["action"] == f"{path}?{query}"
    done = confirm(ada, page(response), PASSWORD)
    assert done.status_code == 302 and phone.get("/api/me").status_code == 401
