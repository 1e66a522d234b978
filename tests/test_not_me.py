""""This wasn't me": the link names one session, ends it and the sessions the person ticks,
stops the password that let it in, and goes straight on to a new password."""

from __future__ import annotations

import pytest
from mailed import open_link, press, press_as_shown, signed_in
from support import UA_FIREFOX, UA_PHONE, browser, login, page, submit

from app import words
from app.models import KnownDevice, LoginSession, SecurityEvent, User
from app.sessions import rules

NEW_PASSWORD = "a brand new and rather long passphrase"


@pytest.fixture
def ada(mail_app, smtp):
    return signed_in(mail_app, smtp)


def alert_link(smtp) -> str:
    return smtp.mailbox.about("ada@example.com", "New sign-in").link("/not-me#")


def session_of(user_agent: str) -> LoginSession:
    return LoginSession.select().where(LoginSession.user_agent == user_agent).order_by(
        LoginSession.id.desc()).get()


def test_it_ends_that_session_stops_the_password_and_asks_for_a_new_one(ada, mail_app, smtp):
    intruder = browser(mail_app, UA_PHONE)
    assert login(intruder).status_code == 302
    link = alert_link(smtp)
    reader = browser(mail_app)  # not signed in: the mail may be read anywhere
    shown = page(open_link(reader, link))
    named = shown.find(attrs={"data-test": "not-me-session"}).get_text(" ", strip=True)
    stranger = session_of(UA_PHONE)
    assert "Mobile Safari 17 on iOS" in named and "203.0.113.7" in named
    assert words.when(stranger.created_at) in named
    assert "ada@example.com" in shown.main.get_text()
    assert intruder.get("/account").status_code == 200  # opening the page ended nothing

    done = press_as_shown(reader, link)
    assert done.status_code == 200
    form = page(done).find("form", action="/password/reset")
    assert form.find("input", attrs={"name": "new_password"})
    assert page(done).find(attrs={"data-test": "not-me-done"})
    assert intruder.get("/account").status_code == 302
    assert session_of(UA_PHONE).end_reason == rules.NOT_ME
    assert not KnownDevice.select().where(KnownDevice.label.contains("iOS")).exists()

    # The password that let the stranger in works no more, for anyone, and says only that.
    for someone in (browser(mail_app, UA_PHONE), browser(mail_app, UA_FIREFOX)):
        refused = login(someone)
        assert refused.status_code == 403
        assert words.PASSWORD_MUST_BE_RESET in page(refused).main.get_text()
    assert login(browser(mail_app), password="not the password at all, no").status_code == 401
    assert SecurityEvent.select().where(SecurityEvent.kind == "password_blocked").count() == 1

    # The page it answered with is the reset form: the mailed link proved the mailbox.
    token = form.find("input", attrs={"name": "token"})["value"]
    saved = submit(reader, "/password/reset", {"token": token, "act": "1",
                                                "new_password": NEW_PASSWORD})
    assert saved.status_code == 302 and saved.headers["Location"] == "/sessions"
    assert User.get().password_blocked_at is None
    assert login(browser(mail_app), password=NEW_PASSWORD).status_code == 302
    assert ada.get("/account").status_code == 302  # the reset signed out every session


def test_the_page_ticks_the_browsers_the_account_does_not_know(ada, mail_app, smtp):
    """The stranger's later session from the same browser (never announced) and one from
    another unknown browser are ticked; the owner's own browser is not, and says so."""
    intruder = browser(mail_app, UA_PHONE)
    login(intruder)
    link = alert_link(smtp)
    intruder.delete_cookie("__Host-session")
    intruder.delete_cookie("__Host-access")
    assert login(intruder).status_code == 302  # the same browser: not announced again
    shown = page(open_link(ada, link))  # read in the owner's own browser
    boxes = {box["value"]: box.has_attr("checked") for box in
             shown.find(attrs={"data-test": "not-me-others"}).find_all("input")}
    mine = ada.get("/api/me").get_json()["session_id"]
    later = session_of(UA_PHONE).public_id
    assert boxes == {mine: False, later: True}
    assert "(this browser)" in shown.find("label", attrs={"for": f"end-{mine}"}).get_text()
    press_as_shown(ada, link)
    assert session_of(UA_PHONE).end_reason == rules.NOT_ME
    assert ada.get("/api/me").status_code == 200


def test_an_old_link_never_ends_a_newer_session_of_that_browser(ada, mail_app, smtp):
    """An alert about a session that was signed out long ago, pressed after that browser
    signed in again (through a reset): it says the session had ended, offers the new
    password, and leaves the newer session alone."""
    firefox = browser(mail_app, UA_FIREFOX)
    assert login(firefox).status_code == 302
    link = alert_link(smtp)
    submit(firefox, "/logout", {}, form_page="/account")
    submit(firefox, "/password/forgot", {"email": "ada@example.com"})
    reset = smtp.mailbox.about("ada@example.com", "Reset your password").link("/password/reset#")
    assert press(firefox, reset, new_password=NEW_PASSWORD).status_code == 302
    newer = firefox.get("/api/me").get_json()["session_id"]

    phone = browser(mail_app, UA_PHONE)
    shown = page(open_link(phone, link))
    assert "has already ended" in shown.find(attrs={"data-test": "not-me-ended"}).get_text()
    assert shown.find("button").get_text(strip=True) == "Choose a new password"
    done = press_as_shown(phone, link)
    assert page(done).find("input", attrs={"name": "new_password"})
    assert firefox.get("/api/me").get_json()["session_id"] == newer
    assert LoginSession.get(LoginSession.public_id == newer).ended_at is None


def test_the_disowned_browser_is_signed_out_whatever_the_boxes_say(ada, mail_app, smtp,
                                                                    clock):
    """The intruder's browser signs in again (not announced); another browser new to the
    account signs in after the intruder; one the account knew before does too. The page ticks
    the intruder's later session (and says it goes anyway) and the new browser's, not the
    known one's; pressed with no box ticked, the intruder's browser is signed out all the
    same, and the others are left as the person chose."""
    known = browser(mail_app, "Known tablet/1.0")
    assert login(known).status_code == 302
    submit(known, "/logout", {}, form_page="/account")
    clock.advance(60)
    intruder = browser(mail_app, UA_PHONE)
    assert login(intruder).status_code == 302
    link = smtp.mailbox.about("ada@example.com", "New sign-in: Mobile Safari").link("/not-me#")
    newcomer = browser(mail_app, "Newcomer/2.0")
    assert login(newcomer).status_code == 302
    assert login(known).status_code == 302
    assert login(intruder).status_code == 302  # the same browser again: not announced

    shown = page(open_link(browser(mail_app), link))
    boxes = {box["value"]: (box.has_attr("checked"), box.has_attr("disabled")) for box in
             shown.find(attrs={"data-test": "not-me-others"}).find_all("input")}
    later, new, old = (session_of(agent).public_id
                       for agent in (UA_PHONE, "Newcomer/2.0", "Known tablet/1.0"))
    assert boxes[later] == (True, True)
    assert boxes[new] == (True, False) and boxes[old] == (False, False)
    assert "signed out with it" in shown.find("label", attrs={"for": f"end-{later}"}).get_text()

    press(browser(mail_app), link)  # no box sent at all
    assert intruder.get("/account").status_code == 302
    assert session_of(UA_PHONE).end_reason == rules.NOT_ME
    assert newcomer.get("/account").status_code == 200
    assert known.get("/account").status_code == 200
