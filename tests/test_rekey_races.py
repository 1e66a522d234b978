"""Re-keys and sign-ins racing requests already in flight: nobody is logged out by a race,
nothing clears a newer response's cookies, and a thief is still caught."""

import pytest
from support import (
    PASSWORD,
    Cookies,
    auth_cookies_set,
    browser,
    csrf_token,
    login,
    only_session,
    submit,
)

from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.sessions import rules, store

GRACE = 30


@pytest.fixture
def app(make_app):
    return make_app(GATEHOUSE_ACCESS_TOKEN_TTL=60, GATEHOUSE_REFRESH_GRACE=GRACE)




def in_flight(app, cookies: Cookies):
    """Another tab of the same browser whose request left before the response came back."""
    tab = browser(app)
    cookies.put(tab)
    return tab


def rekey_after_expiry(ada, clock) -> Cookies:
    """Sign out all other sessions with an expired access token, so that the one request
    rotates and then re-keys. Returns the cookies the browser held before."""
    token = csrf_token(ada.get("/sessions"))
    before = Cookies.of(ada)
    clock.advance(120)
    assert ada.post("/sessions/revoke-others", data={"csrf_token": token}).status_code == 302
    return before


def test_a_parallel_request_during_a_rekey_is_refused_not_treated_as_theft(ada, app, clock):
    before = rekey_after_expiry(ada, clock)
    tab = in_flight(app, Cookies(None, before.session))
    response = tab.get("/api/me")
    assert response.status_code == 401
    assert auth_cookies_set(response) == []  # the re-keyed cookies the browser got survive
    assert only_session().ended_at is None
    assert ada.get("/api/me").status_code == 200


def test_a_replaced_value_after_the_grace_window_is_reuse(ada, app, clock):
    """A lost re-key response, or a copy of the cookies: after the grace window the old value
    ends the session with an explanation, rather than failing silently for ever."""
    before = rekey_after_expiry(ada, clock)
    clock.advance(GRACE + 1)
    tab = in_flight(app, Cookies(None, before.session))
    landed = tab.get("/account", follow_redirects=True)
    assert "sign-in cookie was used twice" in landed.get_data(as_text=True)
    assert only_session().end_reason == rules.REUSE_DETECTED


def test_a_thief_who_rekeys_is_caught_when_the_owner_comes_back(ada, app, clock):
    thief = in_flight(app, Cookies.of(ada))
    assert submit(thief, "/sessions/revoke-others", {}, form_page="/sessions").status_code == 302
    clock.advance(GRACE + 1)
    ada.delete_cookie(ACCESS_COOKIE)  # the owner's access token has expired meanwhile
    assert ada.get("/api/me").status_code == 401
    assert only_session().end_reason == rules.REUSE_DETECTED
    assert thief.get("/api/me").status_code == 401


def test_a_rekey_does_not_count_as_entering_the_password(ada, app, clock):
    """Only typing the password restarts the re-authentication window: a re-key (which needs
    no password inside the window) must not, or a cookie thief could renew it for ever."""
    window = app.config["GATEHOUSE_REAUTH_WINDOW"]
    clock.advance(window - 60)  # still inside the window: no password asked
    assert submit(ada, "/sessions/revoke-others", {}, form_page="/sessions").status_code == 302
    phone = browser(app)
    login(phone)
    clock.advance(120)  # past the window from sign-in, inside it from the re-key
    phone_id = phone.get("/api/me").get_json()["session_id"]
    refused = submit(ada, f"/sessions/{phone_id}/revoke", {}, form_page="/sessions")
    assert "Confirm it's you" in refused.get_data(as_text=True)
    assert phone.get("/api/me").status_code == 200


def test_an_access_token_from_the_same_second_as_a_rekey_is_refused(ada, app, clock):
    clock.now = float(int(clock.now)) + 0.1
    copy = in_flight(app, Cookies(None, Cookies.of(ada).session))
    clock.advance(120)  # both access tokens have expired; the copy renews first
    assert copy.get("/api/me").status_code == 200
    clock.advance(0.5)  # the owner re-keys within the same whole second
    token = csrf_token(ada.get("/sessions"))
    assert ada.post("/sessions/revoke-others", data={"csrf_token": token}).status_code == 302
    assert copy.get("/api/me").status_code == 401
    assert ada.get("/api/me").status_code == 200


def test_a_password_change_commits_whole_or_not_at_all(ada, app, monkeypatch):
    phone = browser(app)
    login(phone)

    def fail(*args, **kwargs):
        raise RuntimeError("database lost while re-keying")

    monkeypatch.setattr(store, "rekey", fail)
    response = submit(ada, "/account/password", {"current_password": PASSWORD,
                                                 "new_password": "an entirely new passphrase"})
    assert response.status_code == 500
    monkeypatch.undo()
    assert phone.get("/api/me").status_code == 200  # nothing was ended...
    assert login(browser(app), password=PASSWORD).status_code == 302  # ...nor changed


def test_signing_in_again_is_not_undone_by_a_request_still_in_flight(ada, app):
    old = Cookies.of(ada)
    login(ada)  # signs in anew: the old session ends, new cookies are set
    fresh = Cookies.of(ada)
    late = in_flight(app, old).get("/api/me")
    assert late.status_code == 401
    assert auth_cookies_set(late) == []  # it would otherwise wipe the fresh sign-in
    assert fresh.session != old.session and ada.get("/api/me").status_code == 200


def test_signing_out_is_not_undone_and_not_reset_by_another_tab(ada, app):
    old = Cookies.of(ada)
    submit(ada, "/logout", {}, form_page="/account")
    late = in_flight(app, old).get("/account")
    assert late.status_code == 302 and auth_cookies_set(late) == []


def test_revocation_from_another_device_still_clears_and_explains(ada, app):
    phone = browser(app)
    login(phone)
    phone_id = phone.get("/api/me").get_json()["session_id"]
    submit(ada, f"/sessions/{phone_id}/revoke", {}, form_page="/sessions")
    response = phone.get("/account")
    assert {h.split("=")[0] for h in auth_cookies_set(response)} >= {ACCESS_COOKIE,
                                                                    SESSION_COOKIE}
    assert "from another device" in phone.get("/login").get_data(as_text=True)


def test_deleting_this_session_through_the_api_clears_its_cookies(ada):
    ada.delete_cookie(ACCESS_COOKIE)  # an expired token: the request rotates first
    own = Cookies.of(ada)
    mine = in_flight(ada.application, own).get("/api/me").get_json()["session_id"]
    response = ada.delete(f"/api/sessions/{mine}", headers={"X-Gatehouse-Request": "1"})
    assert response.status_code == 204
    cleared = {h.split("=")[0]: h for h in auth_cookies_set(response)}
    assert "Max-Age=0" in cleared[ACCESS_COOKIE] and "Max-Age=0" in cleared[SESSION_COOKIE]

