"""Devices on the sessions page: one card per browser (its device cookie), names people give
them, places and times in people's terms, "sign out all other sessions" counted first."""

from __future__ import annotations

import pytest
from support import PASSWORD, UA_PHONE, browser, login, page, signed_up, submit

from app import devices, places
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.models import KnownDevice, LoginSession, SecurityEvent
from app.templating import moment
from app.words import ago


def session_id(client) -> str:
    return client.get("/api/me").get_json()["session_id"]


def forget_sign_in(client) -> None:
    """Cookies cleared but for the device cookie: the browser stays the same device."""
    client.delete_cookie(ACCESS_COOKIE)
    client.delete_cookie(SESSION_COOKIE)


def cards(client, path="/sessions") -> dict[str, list[str]]:
    """Each device card's name and the sessions under it, in page order."""
    html = page(client.get(path))
    return {card.select_one("h2").get_text(strip=True):
            [s["data-session-id"] for s in card.select("[data-session-id]")]
            for card in html.select("[data-device]")}


def name_device(client, target: str, name: str):
    return submit(client, f"/sessions/{target}/name", {"name": name}, form_page="/sessions")


@pytest.fixture
def phone(ada):
    other = browser(ada.application, UA_PHONE)
    login(other)
    return other


# --- one card per device -------------------------------------------------------------------


def test_two_sign_ins_in_one_browser_are_one_device(ada, phone):
    first = session_id(ada)
    forget_sign_in(ada)  # the first session stays live: its cookies are simply gone
    assert login(ada).status_code == 302
    second = session_id(ada)
    found = cards(ada)
    assert found == {"Firefox 128 on Ubuntu": [second, first],
                     "Mobile Safari 17 on iOS": [session_id(phone)]}
    html = page(ada.get("/sessions"))
    (this,) = html.select(".device-current")
    assert "This device" in this.get_text() and this.select('[data-current="true"]')
    assert [s["data-session-id"] for s in html.select('[data-current="true"]')] == [second]


def test_sessions_from_before_devices_are_each_their_own(ada, phone):
    LoginSession.update(device_hash="").execute()
    listed = page(ada.get("/sessions")).select("[data-device]")
    assert [len(card.select("[data-session-id]")) for card in listed] == [1, 1]


def test_the_list_is_paged_and_each_page_is_grouped(ada, app):
    """Sessions are paged 20 at a time (work bounded per request); a page groups its own."""
    for _ in range(24):
        forget_sign_in(ada)
        login(ada)
    first = page(ada.get("/sessions")).select("[data-session-id]")
    second = page(ada.get("/sessions?live=2")).select("[data-session-id]")
    assert (len(first), len(second)) == (20, 5)
    assert len(page(ada.get("/sessions")).select("[data-device]")) == 1


# --- names ---------------------------------------------------------------------------------


def test_a_name_stays_with_the_browser_across_sign_ins(ada, phone):
    response = name_device(ada, session_id(phone), "  Ada's phone  ")
    assert response.status_code == 302
    assert "Ada's phone" in cards(ada)
    phone.post("/logout", data={"csrf_token": page(phone.get("/account")).select_one(
        'input[name="csrf_token"]')["value"]})
    login(phone)
    assert cards(ada)["Ada's phone"] == [session_id(phone)]


def test_names_are_escaped_everywhere(ada, phone):
    assert name_device(ada, session_id(phone), "<b>x</b>&").status_code == 302
    for path in ("/sessions", f"/sessions/{session_id(phone)}"):
        body = ada.get(path).get_data(as_text=True)
        assert "<b>x</b>" not in body and "&lt;b&gt;x&lt;/b&gt;&amp;" in body


@pytest.mark.parametrize(("name", "message"), [
    ("x" * 41, "at most 40"),
    ("bad\x07bell", "Use letters"),
    ("right\u202eto left", "Use letters"),
])
def test_a_bad_name_is_refused_on_its_field(ada, phone, name, message):
    response = name_device(ada, session_id(phone), name)
    assert response.status_code == 400
    field = page(response).select_one('input[name="name"][aria-invalid="true"]')
    error = page(response).find(id=field["aria-describedby"].split()[-1])
    assert message in error.get_text()
    assert not KnownDevice.select().where(KnownDevice.name != "").exists()


def test_names_are_kept_in_nfc_and_empty_takes_the_name_away(ada):
    mine = session_id(ada)
    name_device(ada, mine, "Cafe\u0301 laptop")
    assert KnownDevice.get().name == "Caf\u00e9 laptop"
    name_device(ada, mine, "   ")
    assert "Firefox 128 on Ubuntu" in cards(ada)


def test_a_name_of_forty_characters_is_kept(ada):
    name_device(ada, session_id(ada), "é" * 40)
    assert "é" * 40 in cards(ada)


def test_someone_elses_session_cannot_be_named(ada, app):
    grace = browser(app)
    signed_up(grace, "grace@example.com")
    assert name_device(ada, session_id(grace), "Mine now").status_code == 404
    assert name_device(ada, "not-a-session-id", "Mine now").status_code == 404
    assert not KnownDevice.select().where(KnownDevice.name != "").exists()


def test_an_old_session_without_a_device_can_be_named(ada):
    LoginSession.update(device_hash="").execute()
    assert name_device(ada, session_id(ada), "Old laptop").status_code == 302
    assert "Old laptop" in cards(ada)
    assert not devices.is_known(LoginSession.get().user_id, "session:" + session_id(ada))


def test_the_name_is_used_in_the_activity_list(ada, phone):
    name_device(ada, session_id(phone), "Ada's phone")
    submit(phone, "/account/password", {"current_password": "wrong wrong wrong wrong",
                                        "new_password": "a brand new passphrase for ada"})
    (row,) = page(ada.get("/sessions")).select('[data-event="current_password_failed"]')
    assert row.select_one('[data-field="device"]').get_text(strip=True) == "Ada's phone"


# --- where and when ------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1", "this network"), ("::1", "this network"), ("10.1.2.3", "this network"),
    ("192.168.0.9", "this network"), ("fe80::1", "this network"),
    ("203.0.113.9", ""),  # documentation range: no place is known
    ("8.8.8.8", "United States"), ("::ffff:81.2.69.160", "United Kingdom"),
    ("not an address", ""), ("", ""),
])
def test_places_are_known_offline(address, expected):
    assert places.place(address) == expected


def test_the_page_says_this_network_and_never_unknown_unknown(app):
    local = browser(app)
    local.environ_base["REMOTE_ADDR"] = "127.0.0.1"
    signed_up(local)
    html = page(local.get("/sessions")).select_one("[data-current]").get_text("", strip=True)
    assert "from 127.0.0.1, this network" in html
    # 203.0.113.7 (a documentation address) has no known place: the address alone.
    assert "unknown" not in page(ada_elsewhere(app).get("/sessions")).get_text().lower()


def ada_elsewhere(app):
    client = browser(app)
    login(client)
    return client


@pytest.mark.parametrize(("seconds", "words"), [
    (0, "just now"), (30, "just now"), (60, "1 minute ago"), (180, "3 minutes ago"),
    (7200, "2 hours ago"), (86400 * 3, "3 days ago"), (-86400 * 29, "in 29 days"),
    (86400 * 400, "1 year ago"),
])
def test_times_are_said_in_peoples_terms(seconds, words):
    assert ago(1_000_000 - seconds, 1_000_000) == words


def test_a_time_carries_its_exact_utc_moment(app):
    with app.test_request_context():
        html = str(moment(0))
    assert 'datetime="1970-01-01T00:00:00Z"' in html and 'title="01 Jan 1970, 00:00 UTC"' in html


def test_the_page_loads_its_time_script_from_this_site(ada):
    script = page(ada.get("/sessions")).select_one('script[src^="/static/moments.js"]')
    assert script is not None and not script.string
    with ada.get(script["src"]) as response:
        assert response.status_code == 200 and b"DateTimeFormat" in response.get_data()


# --- sign out all other sessions, counted first --------------------------------------------


def test_sign_out_all_others_says_how_many_first(ada, phone):
    forget_sign_in(phone)
    login(phone)  # the phone now has two live sessions: one device
    other = browser(ada.application)
    login(other)
    shown = page(ada.get("/sessions/revoke-others")).select_one('[data-test="revoke-others-count"]')
    assert "This signs out 3 sessions on 2 devices" in shown.get_text()
    assert LoginSession.select().where(LoginSession.ended_at.is_null()).count() == 4
    done = submit(ada, "/sessions/revoke-others", {}, follow_redirects=True)
    assert "Signed out 3 other sessions on 2 devices." in done.get_data(as_text=True)
    assert LoginSession.select().where(LoginSession.ended_at.is_null()).count() == 1


def test_sign_out_all_others_with_none_says_so(ada):
    shown = page(ada.get("/sessions/revoke-others"))
    assert "No other session is signed in" in shown.get_text()
    assert not shown.select('[data-test="confirm-revoke-others"]')


def test_sign_out_all_others_still_asks_for_the_password_when_due(ada, phone, clock):
    """The count comes first, then the "Confirm it's you" page, as for any such action."""
    clock.advance(ada.application.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    form = page(ada.get("/sessions/revoke-others")).select_one("form.revoke-others")
    assert form.select_one('input[name="password"]') is None
    asked = submit(ada, "/sessions/revoke-others", {})
    assert asked.status_code == 200 and "Confirm it's you" in asked.get_data(as_text=True)
    assert phone.get("/api/me").status_code == 200
    submit(ada, "/sessions/revoke-others", {"password": "not it at all, sorry"})
    assert phone.get("/api/me").status_code == 200
    submit(ada, "/sessions/revoke-others", {"password": PASSWORD})
    assert phone.get("/api/me").status_code == 401
    assert SecurityEvent.select().where(SecurityEvent.kind == "reauth_failed").count() == 1


def test_only_a_live_sessions_device_is_named(ada, phone):
    target = session_id(phone)
    submit(ada, f"/sessions/{target}/revoke", {}, form_page="/sessions")
    assert name_device(ada, target, "Old phone").status_code == 404


def test_naming_a_forgotten_browser_does_not_make_it_known_again(ada, phone):
    """"This wasn't me" forgets a browser; naming it must not bring it back, exempt from the
    account's lockout and its sign-ins unannounced."""
    row = LoginSession.get(LoginSession.user_agent == UA_PHONE)
    devices.forget(row.user_id, row.device_hash)
    assert name_device(ada, row.public_id, "Not mine").status_code == 404
    assert not KnownDevice.select().where(KnownDevice.device_hash == row.device_hash).exists()


def test_naming_another_device_asks_for_the_password_when_due(ada, phone, clock):
    clock.advance(ada.application.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    asked = name_device(ada, session_id(phone), "Work phone")
    assert asked.status_code == 200 and "Confirm it's you" in asked.get_data(as_text=True)
    assert "Work phone" not in cards(ada)
    assert name_device(ada, session_id(ada), "My laptop").status_code == 302  # this browser
    assert "My laptop" in cards(ada)
