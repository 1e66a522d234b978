"""A session's timeline (``/sessions/<id>``) and the activity list: how a session started,
where it was used from, how it ended and by whom, and every use refused after that."""

from __future__ import annotations

import pytest
from support import PASSWORD, UA_PHONE, Cookies, browser, login, page, signed_up, submit

from app import config
from app.carriers import ACCESS_COOKIE
from app.models import LoginSession, SecurityEvent, User


def session_id(client) -> str:
    return client.get("/api/me").get_json()["session_id"]


def timeline(client, target: str, number: int = 1) -> list[tuple[str, str]]:
    html = page(client.get(f"/sessions/{target}?page={number}"))
    return [(li["data-event"], li.select_one(".timeline-what").get_text(" ", strip=True))
            for li in html.select("[data-event]")]


@pytest.fixture
def phone(ada):
    other = browser(ada.application, UA_PHONE)
    login(other)
    return other


def revoke(client, target: str):
    return submit(client, f"/sessions/{target}/revoke", {}, form_page="/sessions")


def test_a_live_session_says_how_it_started_and_how_often_it_was_renewed(ada, phone):
    target = session_id(phone)
    for _ in range(3):
        phone.delete_cookie(ACCESS_COOKIE)  # as after five minutes: the next request renews
        assert phone.get("/api/me").status_code == 200
    html = page(ada.get(f"/sessions/{target}"))
    assert html.select_one("h1").get_text(strip=True) == "Mobile Safari 17 on iOS"
    assert html.select_one('[data-field="renewed"]').get_text(strip=True) == "3 times"
    assert html.select_one('[data-field="start"]').get_text(strip=True) == "Email and password"
    assert timeline(ada, target) == [("sign_in", "Signed in with the password")]


def test_refused_uses_after_a_revocation_are_each_recorded_with_their_address(ada, phone):
    target = session_id(phone)
    stolen = Cookies.of(phone)
    revoke(ada, target)
    assert phone.get("/api/me").status_code == 401  # the access cookie, refused
    thief = browser(ada.application)
    thief.environ_base["REMOTE_ADDR"] = "198.51.100.23"
    Cookies(None, stolen.session).put(thief)  # the session cookie alone: a renewal, refused
    assert thief.get("/api/me").status_code == 401
    events = timeline(ada, target)
    assert [kind for kind, _ in events] == ["sign_in", "revoked", "refused_use", "refused_use"]
    assert "from Firefox 128 on Ubuntu" in events[1][1]
    assert events[2][1].startswith("A request with this session's cookie was refused")
    assert "after you signed it out, from 203.0.113.7" in events[2][1]
    assert events[3][1].endswith("from 198.51.100.23")
    assert LoginSession.get(LoginSession.public_id == target).refused_uses == 2
    ended = page(ada.get(f"/sessions/{target}")).select_one('[data-field="ended"]')
    assert "Signed out by you" in ended.get_text() and "Firefox 128 on Ubuntu" in ended.get_text()


def test_refused_uses_beyond_the_cap_are_counted_not_stored(ada, phone, monkeypatch):
    monkeypatch.setattr(config, "REFUSED_DETAIL", 3)
    target = session_id(phone)
    stolen = Cookies.of(phone)
    revoke(ada, target)
    thief = browser(ada.application)
    for n in range(8):
        thief.environ_base["REMOTE_ADDR"] = f"198.51.100.{n}"
        stolen.put(thief)
        assert thief.get("/api/me").status_code == 401
    stored = SecurityEvent.select().where(SecurityEvent.kind == "refused_use").count()
    assert stored == 3
    assert LoginSession.get(LoginSession.public_id == target).refused_uses == 8
    more = page(ada.get(f"/sessions/{target}")).select_one('[data-test="refused-more"]')
    assert "And 5 more refused requests" in more.get_text(" ", strip=True)
    assert "from 198.51.100.7" in more.get_text(" ", strip=True)


def test_changes_of_address_and_browser_are_on_the_timeline_up_to_a_cap(ada, phone,
                                                                       monkeypatch):
    monkeypatch.setattr(config, "CHANGES_NOTED", 2)
    target = session_id(phone)
    for n in range(4):
        phone.environ_base["REMOTE_ADDR"] = f"192.168.1.{n + 10}"
        assert phone.get("/api/me").status_code == 200
    events = timeline(ada, target)
    assert events[1:] == [("address_changed", "Used from a new address: 192.168.1.10 "
                                              "(this network)"),
                          ("address_changed", "Used from a new address: 192.168.1.11 "
                                              "(this network)")]
    assert LoginSession.get(LoginSession.public_id == target).last_ip_address == "192.168.1.13"


def test_a_reuse_says_where_the_copy_came_from(ada, phone):
    target = session_id(phone)
    old = Cookies.of(phone)
    phone.delete_cookie(ACCESS_COOKIE)
    phone.get("/api/me")  # renewed: the old session value is now superseded
    LoginSession.update(rotated_at=LoginSession.rotated_at - 3600).execute()
    thief = browser(ada.application)
    thief.environ_base["REMOTE_ADDR"] = "198.51.100.99"
    Cookies(None, old.session).put(thief)
    assert thief.get("/api/me").status_code == 401
    kinds = dict(timeline(ada, target))
    assert "presented from 198.51.100.99" in kinds["reuse_detected"]


def test_reauthentication_is_on_the_timeline(ada, phone, clock):
    clock.advance(ada.application.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    submit(ada, f"/sessions/{session_id(phone)}/revoke", {"password": PASSWORD},
           form_page="/sessions")
    assert ("reauthenticated", "Password entered again to confirm an action") in timeline(
        ada, session_id(ada))


def test_someone_elses_timeline_is_not_found(ada, app):
    grace = browser(app)
    signed_up(grace, "grace@example.com")
    assert ada.get(f"/sessions/{session_id(grace)}").status_code == 404
    assert ada.get("/sessions/not-a-session-at-all").status_code == 404


def test_the_timeline_is_paged(ada, phone, monkeypatch):
    monkeypatch.setattr(config, "REFUSED_DETAIL", 100)
    target = session_id(phone)
    stolen = Cookies.of(phone)
    revoke(ada, target)
    for _ in range(25):
        stolen.put(phone)
        phone.get("/api/me")
    assert (len(timeline(ada, target)), len(timeline(ada, target, 2))) == (20, 7)


# --- the activity list ---------------------------------------------------------------------


def kinds_and_devices(client, number: int = 1) -> list[tuple[str, str, str]]:
    html = page(client.get(f"/sessions?events={number}"))
    return [(row["data-event"], row.select("td")[1].get_text(strip=True),
             row.select_one('[data-field="device"]').get_text(strip=True))
            for row in html.select("tr[data-event]")]


def test_wrong_passwords_are_told_apart_from_failed_sign_ins(ada, phone, clock):
    login(browser(ada.application), password="not the password at all")
    submit(ada, "/account/password", {"current_password": "not the password at all",
                                      "new_password": "a brand new passphrase for ada"})
    clock.advance(ada.application.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    submit(phone, f"/sessions/{session_id(ada)}/revoke", {"password": "not it either, no"},
           form_page="/sessions")
    found = {kind: (words, device) for kind, words, device in kinds_and_devices(ada)}
    assert found["sign_in_failed"] == ("Failed sign-in attempt",
                                       "A browser new to your account")
    assert found["current_password_failed"] == (
        "Wrong current password on the password or email form", "Firefox 128 on Ubuntu")
    assert found["reauth_failed"] == ("Wrong password when confirming an action",
                                      "Mobile Safari 17 on iOS")


def test_activity_is_paged_twenty_at_a_time(ada):
    user = User.get().id
    for n in range(45):
        SecurityEvent.create(kind="sign_in_failed", user=user, ip_address="203.0.113.7",
                             created_at=1_000_000 + n)
    pages = [len(kinds_and_devices(ada, n)) for n in (1, 2, 3)]
    assert pages == [20, 20, 7]  # 45, and ada's registration and sign-in
    assert page(ada.get("/sessions")).select_one('[data-test="events-older"]') is not None


def test_ended_sessions_collapse_after_the_first_three(ada):
    for _ in range(5):
        other = browser(ada.application)
        login(other)
        submit(other, "/logout", {}, form_page="/account")
    html = page(ada.get("/sessions"))
    shown = html.select("[data-ended-session-id]")
    hidden = html.select('[data-test="more-ended"] [data-ended-session-id]')
    assert (len(shown), len(hidden)) == (5, 2)
    assert "Show 2 more ended sessions" in html.select_one(
        '[data-test="more-ended"] summary').get_text()
