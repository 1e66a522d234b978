"""Ending more than one session at once: everywhere, this browser too; and the account
itself."""

from __future__ import annotations

from mailed import signed_in
from support import PASSWORD, UA_PHONE, browser, login, page, submit

from app.models import (
    KnownDevice,
    LinkToken,
    LoginSession,
    OutboxMessage,
    SecurityEvent,
    Throttle,
    User,
)
from app.sessions import rules


def test_sign_out_everywhere_this_browser_too(ada, app, clock):
    phone = browser(app, UA_PHONE)
    login(phone)
    clock.advance(601)  # past the re-authentication window: it asks for the password first
    asked = submit(ada, "/sessions/revoke-all", {}, form_page="/sessions/revoke-others")
    assert page(asked).find(attrs={"data-test": "reauth"})
    assert phone.get("/api/me").status_code == 200
    login(ada)  # a fresh sign-in: proven just now
    answer = submit(ada, "/sessions/revoke-all", {}, form_page="/sessions/revoke-others")
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    said = page(ada.get("/login")).find(attrs={"data-flash": "success"}).get_text()
    assert "Signed out everywhere" in said and "and this browser" in said
    assert phone.get("/api/me").status_code == 401
    assert ada.get("/api/me").status_code == 401
    assert not LoginSession.select().where(LoginSession.ended_at.is_null()).exists()
    phone_session = LoginSession.get(LoginSession.user_agent == UA_PHONE)
    assert phone_session.end_reason == rules.REVOKED_OTHERS


def test_deleting_the_account_ends_everything_erases_it_and_mails_a_last_time(
        mail_app, smtp, clock):
    ada = signed_in(mail_app, smtp)
    phone = browser(mail_app, UA_PHONE)
    login(phone)
    login(browser(mail_app), password="a wrong password, for the throttle")
    clock.advance(601)  # past the re-authentication window: the password is asked first
    asked = submit(ada, "/account/delete", {}, form_page="/account/delete")
    assert page(asked).find(attrs={"data-test": "reauth"}) and User.select().exists()
    done = submit(ada, "/account/delete", {"password": PASSWORD}, form_page="/account/delete")
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert "was deleted" in page(ada.get("/")).find(attrs={"data-flash": "success"}).get_text()
    for gone in (ada, phone):
        assert gone.get("/api/me").status_code == 401
    for model in (User, LoginSession, SecurityEvent, KnownDevice, LinkToken):
        assert not model.select().exists(), model
    assert not Throttle.select().where(Throttle.key.contains("ada@example.com")).exists()
    last = smtp.mailbox.about("ada@example.com", "account was deleted")
    assert "last message" in last.text
    assert [row.subject for row in OutboxMessage.select()] == [last.subject]
    assert login(browser(mail_app)).status_code == 401  # no such account any more


def test_forget_this_device(mail_app, smtp):
    """This browser signs out of the account (every session of it there), its name goes,
    and its next sign-in is announced like a stranger's; other browsers stay signed in."""
    ada = signed_in(mail_app, smtp)
    me = ada.get("/api/me").get_json()["session_id"]
    submit(ada, f"/sessions/{me}/name", {"name": "Library computer"}, form_page="/sessions")
    phone = browser(mail_app, UA_PHONE)
    login(phone)
    button = page(ada.get("/sessions")).find(attrs={"data-test": "forget-device"})
    assert button is not None
    answer = submit(ada, "/sessions/forget-device", {}, form_page="/sessions")
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    assert ada.get("/api/me").status_code == 401
    assert phone.get("/api/me").status_code == 200
    assert not KnownDevice.select().where(KnownDevice.name == "Library computer").exists()
    alerts = OutboxMessage.select().where(OutboxMessage.subject.startswith("New sign-in"))
    before = alerts.count()
    assert login(ada).status_code == 302
    assert alerts.count() == before + 1


def test_forgetting_this_device_asks_for_a_recent_sign_in(mail_app, smtp, clock):
    """Whoever copied this browser's cookies must not take away its exemption from the
    account's lockout: past the re-authentication window, the password is asked first."""
    ada = signed_in(mail_app, smtp)
    clock.advance(601)
    asked = submit(ada, "/sessions/forget-device", {}, form_page="/sessions")
    assert page(asked).find(attrs={"data-test": "reauth"})
    assert ada.get("/api/me").status_code == 200
    assert KnownDevice.select().exists()
    done = submit(ada, "/sessions/forget-device", {"password": PASSWORD}, form_page="/sessions")
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    assert ada.get("/api/me").status_code == 401
    assert not KnownDevice.select().exists()
