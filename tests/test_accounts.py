"""Registration and sign-in through the real forms; the password policy as a table."""

import pytest
from support import PASSWORD, login, page, register, submit

from app.models import User
from app.words import in_words


@pytest.mark.parametrize("password, accepted, reason", [
    ("fifteen chars!!", True, None),
    ("fourteen chars", False, "at least 15"),
    ("x" * 128, False, "different characters"),
    ("é" * 64 + "my own words", True, None),
    ("a" * 129, False, "at most 128"),
    ("passwordpassword", False, "commonly used"),
    ("password12345678", False, "commonly used"),
    ("qwertyuiop1234567", False, "commonly used"),
    ("ada@example.com", False, "email"),
    ("GatehouseGatehouse", False, "site's name"),
    ("lowercase words only here", True, None),           # no composition rules
    ("🙂 emoji and spaces are fine 🙂", True, None),
])
def test_password_policy(client, password, accepted, reason):
    response = register(client, password=password)
    created = User.select().where(User.email == "ada@example.com").exists()
    assert created == accepted
    if not accepted:
        assert response.status_code == 200
        error = page(response).select_one("#password-error")
        assert error is not None
        if reason:
            assert reason in error.text


def test_email_is_case_insensitive_and_trimmed(client):
    register(client, email="  Ada@Example.COM ")
    assert User.get().email == "ada@example.com"
    assert submit(client, "/login", {"email": "ADA@example.com", "password": PASSWORD}
                  ).status_code == 302


def test_repeated_failures_are_throttled_with_429(make_app):
    app = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=3)
    client = app.test_client()
    register(client)
    for _ in range(3):
        assert submit(client, "/login", {"email": "ada@example.com", "password": "wrong " * 4}
                      ).status_code == 401
    throttled = submit(client, "/login", {"email": "ada@example.com", "password": PASSWORD,
                                          "next": "/sessions"})
    assert throttled.status_code == 429
    wait = int(throttled.headers["Retry-After"])
    assert wait == app.config["GATEHOUSE_LOGIN_LIMIT_WINDOW"] == 900  # the clock stood still
    html = page(throttled)
    assert [h.get_text() for h in html.select("h1, h2")] == ["Too many attempts"]
    assert "Try again in 15 minutes." in html.select_one('[data-test="error-message"]').text
    assert "Too many attempts" not in html.select_one('[data-test="error-message"]').text
    back = html.select_one('[data-test="way-back"]')
    assert back.get_text() == "Back to sign in" and back["href"] == "/login?next=/sessions"


@pytest.mark.parametrize("seconds, words", [
    (1, "1 second"), (45, "45 seconds"), (60, "1 minute"), (61, "2 minutes"),
    (240, "4 minutes"), (900, "15 minutes"), (3600, "1 hour"), (5400, "2 hours"),
    (30 * 86400, "30 days"),
])
def test_the_wait_is_said_in_words_never_too_early(seconds, words):
    assert in_words(seconds) == words


@pytest.mark.parametrize("path, button", [
    ("/login", "Sign out and sign in as someone else"),
    ("/register", "Sign out and create another account"),
])
def test_signed_in_people_see_who_they_are_instead_of_the_form(ada, path, button):
    html = page(ada.get(path))
    assert html.h1.get_text(strip=True) == "You are signed in"
    assert html.select_one('[data-test="signed-in-as"]').get_text() == "ada@example.com"
    assert html.select('input[type="password"]') == []
    assert html.find("a", string="Go to your account")["href"] == "/account"
    switch = html.select_one('[data-test="switch-account"]')
    assert switch.get_text(strip=True) == button
    form = switch.find_parent("form")
    assert form["method"] == "post" and form["action"] == "/logout"
    fields = {box["name"]: box["value"] for box in form.select("input[name]")}
    answer = ada.post("/logout", data=fields)
    assert answer.status_code == 302 and answer.headers["Location"] == path
    assert ada.get("/api/me").status_code == 401


def test_opening_sign_in_with_next_while_signed_in_offers_to_continue(ada):
    html = page(ada.get("/login?next=/sessions"))
    assert html.find("a", string="Continue")["href"] == "/sessions"
    html = page(ada.get("/login?next=//evil.example"))
    assert html.find("a", string="Continue")["href"] == "/account"


def test_posting_the_sign_in_form_while_signed_in_starts_a_new_session(ada):
    before = ada.get("/api/me").get_json()["session_id"]
    assert login(ada).status_code == 302
    assert ada.get("/api/me").get_json()["session_id"] != before


def test_people_sent_by_a_protected_page_are_asked_to_sign_in_to_continue(client):
    landed = client.get("/sessions", follow_redirects=True)
    assert page(landed).h1.get_text(strip=True) == "Sign in to continue"
    assert page(client.get("/login")).h1.get_text(strip=True) == "Sign in"


@pytest.mark.parametrize("address", [
    "x@[evil.example",  # once accepted: the mail library cannot build a message for it
    "x@[192.0.2.1]", "two..dots@example.com", "no-dot@localhost", "ünï@example.com",
    "a@b@example.com", "spaced out@example.com",
])
def test_addresses_a_mail_cannot_go_to_are_refused(client, address):
    response = register(client, email=address)
    assert response.status_code == 200
    assert "Enter a valid email address." in page(response).select_one("#email-error").text
    assert not User.select().exists()


def test_an_internationalised_domain_is_accepted(client):
    register(client, email="Ada@Exämple.com")
    assert User.get().email == "ada@exämple.com"
