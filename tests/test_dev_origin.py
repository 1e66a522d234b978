"""Development as people start it: on any port, and sometimes opened from a phone on the LAN.
Mail links follow a loopback request's origin when no public URL is set (never in
production), and a page opened where its cookies cannot work says so."""

from __future__ import annotations

import pytest
from support import PASSWORD, PUBLIC_URL, csrf_token, page

from app.config import DEV_PUBLIC_URL
from app.models import OutboxMessage

LAN = "http://192.168.1.5:5000"


@pytest.fixture
def dev_app(make_app, smtp):
    """Development without GATEHOUSE_PUBLIC_URL, its mail going to the test's SMTP server."""
    app = make_app(GATEHOUSE_ENV="development", GATEHOUSE_EMAIL_VERIFICATION="required",
                   GATEHOUSE_SMTP_URL=smtp.url)
    yield app
    app.extensions["gatehouse_mail"].dispatcher.stop()


def register_at(app, origin: str, email: str = "ada@example.com"):
    client = app.test_client()
    token = csrf_token(client.get("/register", base_url=origin))
    return client.post("/register", base_url=origin, data={
        "csrf_token": token, "email": email, "password": PASSWORD})


def mailed_link(smtp, email: str = "ada@example.com") -> str:
    return smtp.mailbox.wait_for(email)[0].link("/email/verify#")


@pytest.mark.parametrize("origin", ["http://localhost:5123", "http://127.0.0.2:8080",
                                    "http://[::1]:5001"])
def test_development_links_start_with_a_loopback_requests_origin(dev_app, smtp, origin):
    assert register_at(dev_app, origin).status_code == 200
    assert mailed_link(smtp).startswith(f"{origin}/email/verify#")


@pytest.mark.parametrize("origin", [LAN, "http://evil.example:5000"])
def test_development_links_never_follow_another_host(dev_app, smtp, origin):
    """A request that came to a LAN address, or named another host: the default origin."""
    register_at(dev_app, origin)
    assert mailed_link(smtp).startswith(f"{DEV_PUBLIC_URL}/email/verify#")


@pytest.mark.parametrize("env", ["development", "production"])
def test_a_configured_public_url_always_wins(make_app, smtp, env):
    app = make_app(GATEHOUSE_ENV=env, GATEHOUSE_EMAIL_VERIFICATION="required",
                   GATEHOUSE_SMTP_URL=smtp.url, GATEHOUSE_PUBLIC_URL=PUBLIC_URL)
    try:
        register_at(app, "http://localhost:5123")
        assert mailed_link(smtp).startswith(f"{PUBLIC_URL}/email/verify#")
    finally:
        app.extensions["gatehouse_mail"].dispatcher.stop()


def test_a_lan_address_over_http_says_what_to_do(dev_app):
    """Browsers keep no Secure cookie there: every page says so, and a refused form gives
    that reason instead of "the form had expired"."""
    client = dev_app.test_client()
    shown = page(client.get("/login", base_url=LAN))
    banner = shown.find(attrs={"data-test": "insecure-origin"}).get_text()
    assert "http://localhost:5000" in banner and "HTTPS" in banner
    refused = client.post("/login", base_url=LAN, data={"email": "ada@example.com",
                                                         "password": PASSWORD})
    assert refused.status_code == 400
    said = page(refused).main.get_text()
    assert "http://localhost:5000" in said and "had expired" not in said
    assert not OutboxMessage.select().exists()


@pytest.mark.parametrize("origin", ["http://localhost:5000", "http://127.0.0.1:5000",
                                    "https://192.168.1.5:5000"])
def test_no_warning_where_cookies_work(dev_app, origin):
    shown = page(dev_app.test_client().get("/login", base_url=origin))
    assert not shown.find(attrs={"data-test": "insecure-origin"})


def test_no_warning_in_production(app):
    shown = page(app.test_client().get("/login", base_url=LAN))
    assert not shown.find(attrs={"data-test": "insecure-origin"})
