"""The QA kit (development only): the mail a tester reads, and the session states a tester
reaches at once, each through what the server holds, judged by the real middleware."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from polling import eventually
from support import PASSWORD, Cookies, browser, login, page, register, submit

from app import mail, settings
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.models import LoginSession, SecurityEvent
from app.sessions import rules
from app.sessions.rules import REUSE_DETECTED

HEADER = {"X-Gatehouse-Request": "1"}
ROUTES = [("GET", "/dev/mail"), ("GET", "/dev/mail.json?to=a@example.com"),
          ("GET", "/dev/session"), ("POST", "/dev/users"),
          *[("POST", f"/dev/sessions/abc/{a}") for a in ("expire-access", "idle", "max-age",
                                                          "replay")]]


@pytest.fixture
def dev_app(make_app, tmp_path):
    app = make_app(GATEHOUSE_ENV="development", GATEHOUSE_EMAIL_VERIFICATION="required")
    app.instance_path = str(tmp_path / "instance")  # the outbox under the test's directory
    settings.init_app(app)
    mail.init_app(app)
    yield app
    app.extensions["gatehouse_mail"].dispatcher.stop()


@pytest.mark.parametrize("method, path", ROUTES)
def test_in_production_no_dev_route_exists(app, method, path):
    reply = browser(app).open(path, method=method, headers=HEADER)
    assert reply.status_code == 404


def new_user(app) -> dict:
    reply = browser(app).post("/dev/users", headers=HEADER)
    assert reply.status_code == 201
    return reply.get_json()


def signed_in(app, account: dict):
    client = browser(app)
    assert login(client, account["email"], account["password"]).status_code == 302
    return client


def test_dev_users_makes_a_confirmed_account_that_signs_in(dev_app):
    account = new_user(dev_app)
    assert account["email"].endswith("@example.com") and len(account["password"]) >= 15
    assert signed_in(dev_app, account).get("/api/me").get_json()["email"] == account["email"]
    assert new_user(dev_app)["email"] != account["email"]


def test_a_suite_needs_the_header_or_a_form_token(dev_app):
    assert browser(dev_app).post("/dev/users").status_code == 400  # no token, no header


def test_dev_mail_lists_the_outbox_newest_first_with_links(dev_app):
    client = browser(dev_app)
    register(client, "tess@example.com")
    register(browser(dev_app), "other@example.com")
    mail.send_pending(dev_app)  # what the sender thread has not sent yet
    eventually(lambda: len(browser(dev_app).get("/dev/mail.json").get_json()) == 2, within=10,
               what="both mails in the outbox")
    (message,) = browser(dev_app).get("/dev/mail.json?to=Tess@example.com").get_json()
    assert set(message) == {"id", "to", "subject", "sent_at", "text", "links"}
    assert message["subject"] == "Confirm your email address"
    (link,) = [u for u in message["links"] if "/email/verify#" in u]
    path, token = urlsplit(link).path, urlsplit(link).fragment
    assert submit(client, path, {"token": token, "act": "1",
                                 "password": PASSWORD}).status_code == 302
    html = page(browser(dev_app).get("/dev/mail"))
    shown = [a["href"] for a in html.select("[data-test=dev-mail-link]")]
    assert link in shown
    subjects = [m.h2.text for m in html.select("[data-test=dev-mail-message]")]
    assert subjects[0] == "Confirm your email address" and len(subjects) == 2


def act(client, session_id: str, action: str):
    return client.post(f"/dev/sessions/{session_id}/{action}", headers=HEADER)


def test_expire_access_makes_the_next_request_rotate(dev_app):
    client = signed_in(dev_app, new_user(dev_app))
    session = LoginSession.get()
    before = Cookies.of(client)
    assert act(client, session.public_id, "expire-access").status_code == 200
    assert Cookies.of(client).access is None  # gone, as when its Max-Age runs out
    assert client.get("/api/me").status_code == 200
    assert Cookies.of(client).session != before.session  # the request rotated
    assert LoginSession.get().generation == 1


@pytest.mark.parametrize("action, reason", [("idle", rules.IDLE_TIMEOUT),
                                            ("max-age", rules.EXPIRED)])
def test_idle_and_max_age_end_the_session_on_its_next_request(dev_app, action, reason):
    account = new_user(dev_app)
    client = signed_in(dev_app, account)
    session = LoginSession.get()
    assert client.get("/api/me").status_code == 200  # remembered by this worker
    other_browser = signed_in(dev_app, account)  # the same person's: any of theirs may ask
    assert act(other_browser, session.public_id, action).status_code == 200
    reply = client.get("/api/me")
    assert reply.status_code == 401 and reply.get_json()["reason"] == reason
    assert LoginSession.get_by_id(session.id).end_reason == reason


def test_replay_is_reuse_detection_from_the_thiefs_address(dev_app):
    client = signed_in(dev_app, new_user(dev_app))
    session = LoginSession.get()
    assert act(client, session.public_id, "replay").status_code == 200
    reply = client.get("/api/me")
    assert reply.status_code == 401 and reply.get_json()["reason"] == REUSE_DETECTED
    event = SecurityEvent.get(SecurityEvent.kind == REUSE_DETECTED)
    assert event.ip_address == "198.51.100.66"
    assert client.get_cookie(SESSION_COOKIE) is None and client.get_cookie(ACCESS_COOKIE) is None


def test_browser_actions_need_that_browsers_own_session(dev_app):
    signed_in(dev_app, new_user(dev_app))
    session = LoginSession.get()
    for action in ("expire-access", "replay"):
        assert act(browser(dev_app), session.public_id, action).status_code == 409


def test_idle_and_max_age_need_a_session_of_the_same_person(dev_app):
    owner = signed_in(dev_app, new_user(dev_app))
    session = LoginSession.get()
    someone_else = signed_in(dev_app, new_user(dev_app))
    for client in (browser(dev_app), someone_else):
        for action in ("idle", "max-age"):
            reply = act(client, session.public_id, action)
            assert reply.status_code == 409 and "the person asking" in reply.get_data(as_text=True)
    assert owner.get("/api/me").status_code == 200
    assert LoginSession.get_by_id(session.id).end_reason is None
    assert act(browser(dev_app), "no-such-session", "idle").status_code == 404
    assert act(browser(dev_app), session.public_id, "explode").status_code == 404


def test_the_session_page_has_its_four_buttons(dev_app):
    client = signed_in(dev_app, new_user(dev_app))
    html = page(client.get("/dev/session"))
    buttons = [b["data-test"] for b in html.select("button[data-test^=dev-]")]
    assert buttons == ["dev-expire-access", "dev-idle", "dev-max-age", "dev-replay"]
    session = LoginSession.get()
    assert html.select_one("[data-test=dev-session]")["data-session-id"] == session.public_id
    reply = submit(client, f"/dev/sessions/{session.public_id}/max-age", {},
                   form_page="/dev/session")
    assert reply.status_code == 302
    assert client.get("/dev/session").status_code == 302  # ended: to the sign-in page
