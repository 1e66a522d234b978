"""Ending more than one session at once, from the sessions page: everywhere, this browser
too."""

from __future__ import annotations

from support import UA_PHONE, browser, login, page, submit

from app.models import LoginSession
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
