"""Registration and sign-in through the real forms; the password policy as a table."""

import pytest
from support import PASSWORD, page, register, submit

from app.models import User


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
    throttled = submit(client, "/login", {"email": "ada@example.com", "password": PASSWORD})
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
