"""The rotation protocol against a copied cookie: the reproductions of the outside review, each
driven through the real pages with the injected clock (the timing here is logical).

Delivery is proven by use; the lost-response allowance is bounded; a copy that is used after
the person moved on ends the session and says from where; the idle limit is never shorter than
configured; the sessions page shows where and on what a session was last used."""

import pytest
from support import UA_PHONE, Cookies, browser, cookie, login, page, signed_up

from app.carriers import ACCESS_COOKIE, SESSION_COOKIE

ACCESS_TTL = 60
GRACE = 30
THIEF_IP = "198.51.100.9"


@pytest.fixture
def app(make_app):
    return make_app(GATEHOUSE_ACCESS_TOKEN_TTL=ACCESS_TTL, GATEHOUSE_REFRESH_GRACE=GRACE)


def thief_with(app, cookies: Cookies):
    """Another machine, at another address, holding a copy of ``cookies``."""
    thief = browser(app, UA_PHONE)
    thief.environ_base["REMOTE_ADDR"] = THIEF_IP
    cookies.put(thief)
    return thief


def me(client):
    return client.get("/api/me")


def ended_with_reuse(client) -> bool:
    """Whether ``client``'s next call finds its session ended because of a reused value."""
    response = me(client)
    return response.status_code == 401 and response.get_json()["reason"] == "reuse_detected"


def ended_session_text(client) -> str:
    """What the sessions page says about the one recently ended session, once signed in."""
    login(client)
    (ended,) = page(client.get("/sessions")).select("[data-ended-session-id]")
    return ended.get_text(" ", strip=True)


# --- 1. a superseded value works for an unbounded time, without a trace ---------------------


def rotated_once_then_idle(ada, clock) -> Cookies:
    """Sign in (h0), one page view after the access token expired (h0 -> h1), then nothing.
    Returns the h0 cookies."""
    h0 = Cookies.of(ada)
    clock.advance(ACCESS_TTL + 10)
    assert ada.get("/account").status_code == 200
    assert cookie(ada, SESSION_COOKIE) != h0.session
    return h0


def test_a_superseded_value_alone_is_honoured_only_within_the_lost_response_window(ada, clock):
    """h0 alone, again and again after the grace window: served (the response delivering h1
    may have been lost) only until GATEHOUSE_LOST_RESPONSE_WINDOW (600 s by default) after the
    rotation; then it is reuse, recorded with the address that presented it."""
    h0 = rotated_once_then_idle(ada, clock)
    thief = thief_with(ada.application, Cookies(None, h0.session))
    served = 0
    for _ in range(12):  # every 70 s: 40 s, 110 s, ... 810 s after the rotation
        clock.advance(70 if served else GRACE + 10)
        Cookies(None, h0.session).put(thief)  # only ever h0: never the value it was given
        if me(thief).status_code != 200:
            break
        served += 1
    assert served == 9  # 40 s ... 600 s; the presentation at 670 s is refused
    assert ended_with_reuse(ada)
    assert f"used again from {THIEF_IP}" in ended_session_text(ada)


def test_a_shorter_lost_response_window_is_honoured(make_app, clock):
    app = make_app(GATEHOUSE_ACCESS_TOKEN_TTL=ACCESS_TTL, GATEHOUSE_REFRESH_GRACE=GRACE,
                   GATEHOUSE_LOST_RESPONSE_WINDOW=0)
    ada = browser(app)
    signed_up(ada)
    h0 = rotated_once_then_idle(ada, clock)
    clock.advance(GRACE + 1)
    thief = thief_with(app, Cookies(None, h0.session))
    assert me(thief).status_code == 401
    assert ended_with_reuse(ada)


def test_a_successor_is_proven_by_its_access_token_alone(ada, clock):
    """Whoever received h1 uses only the access token issued with it: h1 is proven, so h0
    presented after the grace window is reuse, not a lost response."""
    h0 = rotated_once_then_idle(ada, clock)
    ada.delete_cookie(SESSION_COOKIE)  # requests that carry the access cookie alone
    assert me(ada).status_code == 200
    clock.advance(GRACE + 10)
    thief = thief_with(ada.application, Cookies(None, h0.session))
    assert me(thief).status_code == 401
    assert ended_with_reuse(ada)


# --- 2. a thief who rotates first ------------------------------------------------------------


def test_a_thief_who_rotates_first_is_caught_when_the_person_keeps_browsing(ada, clock):
    """The thief copies the cookies and rotates at once (no access cookie); the person keeps
    browsing with the access token they hold. Past the grace window that token, issued with a
    superseded value, shows that someone else rotated: the session ends."""
    thief = thief_with(ada.application, Cookies(None, Cookies.of(ada).session))
    assert me(thief).status_code == 200  # the thief now holds h1
    for _ in range(2):
        clock.advance(10)
        assert me(ada).status_code == 200  # within the grace window: a parallel tab, maybe
    clock.advance(20)
    response = me(ada)
    assert response.status_code == 401
    assert cookie(ada, SESSION_COOKIE) is None  # the person is not handed the thief's value
    assert me(thief).status_code == 401
    assert "used again from 203.0.113.7" in ended_session_text(ada)


def test_a_thief_riding_on_the_access_cookie_is_caught_at_the_persons_next_rotation(ada,
                                                                                    clock):
    """The thief rotates once, then uses only the access cookie it got (never the session
    value, which the old protocol needed to see). When the person's own access token expires
    and their browser presents h0, h1 has been proven: reuse."""
    thief = thief_with(ada.application, Cookies(None, Cookies.of(ada).session))
    assert me(thief).status_code == 200
    thief.delete_cookie(SESSION_COOKIE)
    clock.advance(ACCESS_TTL - 5)
    assert me(thief).status_code == 200  # the access cookie alone, just before it expires
    clock.advance(15)  # the person's access token has expired: their browser presents h0
    assert me(ada).status_code == 401
    assert cookie(ada, SESSION_COOKIE) is None
    assert me(thief).status_code == 401


# --- 4. the idle limit is never shorter than configured ---------------------------------------


def test_polling_every_fifteen_seconds_is_never_idle(make_app, clock):
    app = make_app(GATEHOUSE_SESSION_IDLE_TTL=60, GATEHOUSE_ACCESS_TOKEN_TTL=300)
    ada = browser(app)
    signed_up(ada)
    for _ in range(20):  # five minutes of polling
        clock.advance(15)
        assert me(ada).status_code == 200


def test_the_idle_limit_is_at_most_one_write_interval_longer(make_app, clock):
    app = make_app(GATEHOUSE_SESSION_IDLE_TTL=60, GATEHOUSE_ACCESS_TOKEN_TTL=300)
    ada = browser(app)
    signed_up(ada)
    clock.advance(45)
    assert me(ada).status_code == 200  # the last request
    clock.advance(60 + 60)  # the idle limit plus "last active" written at most once a minute
    response = me(ada)
    assert response.status_code == 401 and response.get_json()["reason"] == "idle_timeout"


@pytest.mark.parametrize("quiet", [59, 1, 30])
def test_a_session_used_within_the_idle_limit_is_live_whatever_the_write_phase(make_app, clock,
                                                                               quiet):
    app = make_app(GATEHOUSE_SESSION_IDLE_TTL=120, GATEHOUSE_ACCESS_TOKEN_TTL=300)
    ada = browser(app)
    signed_up(ada)
    for _ in range(3):
        clock.advance(quiet)
        assert me(ada).status_code == 200
    clock.advance(119)
    assert me(ada).status_code == 200


# --- 5. the person sees where and on what a session was last used -----------------------------


def test_the_sessions_page_shows_the_last_address_and_device_beside_the_sign_in_ones(ada,
                                                                                    clock):
    clock.advance(5)  # well inside the once-a-minute "last active" interval
    ada.environ_base.update(REMOTE_ADDR="192.0.2.44", HTTP_USER_AGENT=UA_PHONE)
    assert me(ada).status_code == 200
    (row,) = page(ada.get("/sessions")).select('[data-current="true"]')
    text = row.get_text(" ", strip=True)
    assert "203.0.113.7" in text and "Firefox 128 on Ubuntu" in text  # signed in
    assert "192.0.2.44" in text and "Mobile Safari 17 on iOS" in text  # last used


def test_the_last_address_is_not_shown_twice_when_it_never_changed(ada):
    (row,) = page(ada.get("/sessions")).select('[data-current="true"]')
    assert row.get_text(" ", strip=True).count("203.0.113.7") == 1


def test_the_reuse_record_names_the_address_that_presented_the_copy(ada, clock):
    stolen = Cookies.of(ada)
    clock.advance(ACCESS_TTL + 10)
    assert me(ada).status_code == 200  # rotates
    assert me(ada).status_code == 200  # proves the successor
    clock.advance(GRACE + 1)
    thief = thief_with(ada.application, Cookies(None, stolen.session))
    assert me(thief).status_code == 401
    assert ended_with_reuse(ada)
    text = ended_session_text(ada)
    assert f"Its sign-in cookie was used again from {THIEF_IP}" in text
    assert page(ada.get("/sessions")).select('[data-event="reuse_detected"]')


def test_an_access_cookie_alone_from_a_superseded_generation_is_refused_past_grace(ada, clock):
    access_only = Cookies(Cookies.of(ada).access, None)
    thief = thief_with(ada.application, Cookies(None, Cookies.of(ada).session))
    assert me(thief).status_code == 200  # rotates with a copy of the session value
    clock.advance(GRACE + 1)
    holder = thief_with(ada.application, access_only)
    assert me(holder).status_code == 401
    assert cookie(holder, ACCESS_COOKIE) is None
