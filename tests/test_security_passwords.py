"""Checklist group 1: the password policy at the real forms, and a sign-in that reveals nothing."""

import re
import unicodedata

import pytest
from argon2 import PasswordHasher
from support import PASSWORD, browser, login, page, register, signed_up, submit

from app.models import User
from app.passwords import Argon2Profile, Hasher

EMAIL = "alice@example.com"


def refusal(response) -> str:
    """The reason the register form gives, or '' when the account was created."""
    if response.status_code == 302:
        return ""
    error = page(response).find(class_="error")
    return error.get_text(" ", strip=True) if error else "(no reason shown)"


@pytest.mark.parametrize("password, reason", [
    ("123456789012345", "commonly used"),
    ("passwordpassword", "commonly used"),
    ("password1234567", "commonly used"),
    ("!!!qwerty123456", "commonly used"),
    ("iloveyouiloveyou", "commonly used"),
    ("aaaaaaaaaaaaaaaa", "different characters"),
    ("alice@example.com", "email address"),
    ("alice@example.com1", "email address"),
    ("ALICE@EXAMPLE.COM!!", "email address"),
    ("gatehousegatehouse", "site's name"),
    ("Gatehouse2024!!!!", "site's name"),
    ("fourteen chars", "at least 15"),
    # Sequences, keyboard walks and repeats (NIST SP 800-63B: "sequential characters").
    ("abcdefghijklmnop", "keyboard pattern"),
    ("qwertyuiopasdfgh", "keyboard pattern"),
    ("123456789abcdefg", "keyboard pattern"),
    ("ZYXWVUTSRQPONMLK", "keyboard pattern"),
    ("zaq12wsx cde34rfv", "keyboard pattern"),
    ("asdf-asdf-asdf-asdf", "keyboard pattern"),
    ("mydog123456789012", "keyboard pattern"),
    ("x" * 129, "at most 128"),
])
def test_weak_passwords_are_refused_with_the_reason(client, password, reason):
    assert reason in refusal(register(client, EMAIL, password))
    assert User.select().count() == 0


@pytest.mark.parametrize("password", [
    "correcthorsebatterystaple", "pass phrase with spaces 😀", "naïve café ümlaut",
    "quartz wigwam pelican drizzle mosaic lantern thimble orchard zephyr",
    "😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰",
])
def test_long_unicode_and_lowercase_passwords_are_accepted(client, password):
    """No composition rules; emoji count one per code point; 64+ characters work."""
    assert refusal(register(client, EMAIL, password)) == ""
    assert login(client, EMAIL, password).status_code == 302


def test_129_characters_are_refused_before_any_hashing(client, monkeypatch):
    calls = []
    monkeypatch.setattr(PasswordHasher, "hash", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(PasswordHasher, "verify", lambda *a, **k: calls.append(a))
    assert "at most 128" in refusal(register(client, EMAIL, "k" * 129))
    assert login(client, EMAIL, "k" * 129).status_code == 401
    assert login(client, EMAIL, "k" * 100_000).status_code in (401, 413)
    assert calls == []


def test_nfc_and_nfd_of_the_same_text_are_the_same_password(client):
    text = "crème brûlée à la café 2024"
    register(client, EMAIL, unicodedata.normalize("NFD", text))
    assert login(client, EMAIL, unicodedata.normalize("NFC", text)).status_code == 302


def test_the_whole_password_is_verified_without_truncation_or_case_change(client):
    password = "the quick brown fox jumps over the lazy dog " * 2 + "1234567890abc"
    assert len(password) == 101
    register(client, EMAIL, password)
    for wrong in (password[:100], password + "x", password.swapcase()):
        assert login(client, EMAIL, wrong).status_code == 401
    assert login(client, EMAIL, password).status_code == 302


def comparable(response) -> tuple:
    """Status, headers and body without what differs anyway: the CSRF token, cookies, the
    request's own id and the email the person typed, which the form shows back to them."""
    body = re.sub(r'value="[^"]*"', "", response.get_data(True))
    headers = sorted((k, v) for k, v in response.headers.items()
                     if k not in ("Set-Cookie", "Content-Length", "X-Request-ID"))
    return response.status_code, headers, body


def test_unknown_email_and_wrong_password_fail_identically(app):
    signed_up(browser(app), EMAIL)
    unknown = login(browser(app), "nobody@example.com", PASSWORD)
    wrong = login(browser(app), EMAIL, PASSWORD + "!")
    malformed = login(browser(app), "not an email\x00", PASSWORD)
    assert unknown.status_code == 401
    assert comparable(unknown) == comparable(wrong) == comparable(malformed)
    assert "match an account" in unknown.get_data(True)


def test_throttled_account_looks_the_same_whether_it_exists_or_not(make_app):
    app = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=2)
    signed_up(browser(app), EMAIL)
    responses = []
    for email in (EMAIL, "nobody@example.com"):
        client = browser(app)
        for _ in range(2):
            assert login(client, email, "wrong password for sure").status_code == 401
        responses.append(login(client, email, PASSWORD))
    assert responses[0].status_code == responses[1].status_code == 429
    assert comparable(responses[0]) == comparable(responses[1])


def test_unknown_email_still_costs_one_argon2_verify(client, monkeypatch):
    calls = []
    real = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify",
                        lambda self, stored, pw: calls.append(stored) or real(self, stored, pw))
    assert login(client, "nobody@example.com", PASSWORD).status_code == 401
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_registering_a_taken_email_looks_like_registering_a_new_one(app):
    first = register(browser(app), EMAIL)
    hash_before = User.get().password_hash
    again = register(browser(app), EMAIL, "another perfectly fine passphrase")
    assert User.get().password_hash == hash_before
    fresh = register(browser(app), "new@example.com")
    assert first.status_code == again.status_code == fresh.status_code == 302
    assert again.headers["Location"] == fresh.headers["Location"]
    assert login(browser(app), EMAIL, PASSWORD).status_code == 302


def test_hashes_are_argon2id_and_salted(client):
    register(client, EMAIL)
    register(client, "bob@example.com")
    first, second = (u.password_hash for u in User.select().order_by(User.id))
    assert first.startswith("$argon2id$v=19$") and first != second


def test_login_upgrades_the_hash_when_argon2_parameters_change(make_app):
    register(browser(make_app()), EMAIL)
    assert ",t=1," in User.get().password_hash
    stronger = make_app(GATEHOUSE_ARGON2_TIME_COST=2, GATEHOUSE_ARGON2_MEMORY_KIB=16)
    assert login(browser(stronger), EMAIL).status_code == 302
    stored = User.get().password_hash
    assert "m=16,t=2," in stored
    assert Hasher(Argon2Profile(2, 16, 1)).verify(stored, PASSWORD)


def test_credentials_in_the_query_string_do_not_sign_in(client):
    register(client, EMAIL)
    for response in (client.get(f"/login?email={EMAIL}&password={PASSWORD}"),
                     client.post(f"/login?email={EMAIL}&password={PASSWORD}")):
        assert response.status_code in (200, 400)
        assert "__Host-access" not in str(response.headers.getlist("Set-Cookie"))
    assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize("email, password", [("admin", "admin"), ("admin@example.com", "admin"),
                                             ("root", "root"), ("admin", "password")])
def test_no_default_accounts_exist(client, email, password):
    assert login(client, email, password).status_code == 401


def test_a_new_password_equal_to_the_current_one_is_refused_with_the_reason(ada):
    """Also as another normalisation of the same text (NFD), which is the same password."""
    before = User.get().password_hash
    for same in (PASSWORD, unicodedata.normalize("NFD", PASSWORD)):
        response = submit(ada, "/account/password", {"current_password": PASSWORD,
                                                      "new_password": same})
        assert response.status_code == 200
        box = page(response).select_one("#new_password")
        assert box["aria-invalid"] == "true"
        assert "Choose a password different from your current one." in page(response).select_one(
            f"#{box['aria-describedby'].split()[-1]}").get_text()
    assert User.get().password_hash == before
