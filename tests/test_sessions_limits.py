"""A person's sessions are capped, and listing them never reads more than a page: the cost of
a request does not grow with the rows a person has."""

import logging
import secrets

import pytest
from support import UA_FIREFOX, browser, login, page, signed_up

from app import devices
from app.config import PAGE_SIZE
from app.models import LoginSession, User
from app.sessions import rules


def sign_in_browsers(app, clock, count: int) -> list:
    first = browser(app)
    signed_up(first)
    clients = [first]
    for _ in range(count - 1):
        clock.advance(5)
        other = browser(app)
        assert login(other).status_code == 302
        clients.append(other)
    return clients


def test_signing_in_beyond_the_cap_ends_the_least_recently_used_session(make_app, clock):
    app = make_app(GATEHOUSE_MAX_SESSIONS_PER_USER=3)
    first, second, third = sign_in_browsers(app, clock, 3)
    clock.advance(61)
    assert first.get("/api/me").status_code == 200  # now used more recently than the second
    fourth = browser(app)
    assert login(fourth).status_code == 302
    live = LoginSession.select().where(LoginSession.ended_at.is_null()).count()
    assert live == 3
    assert second.get("/api/me").get_json()["reason"] == rules.SESSION_LIMIT
    landed = second.get("/account", follow_redirects=True).get_data(as_text=True)
    assert "more devices than it may keep at once" in landed
    for client in (first, third, fourth):
        assert client.get("/api/me").status_code == 200
    ended = page(first.get("/sessions")).select('[data-end-reason="session_limit"]')
    assert ended and "unused longest" in ended[0].get_text(" ", strip=True)


def test_the_device_name_is_parsed_once_at_sign_in(app, monkeypatch):
    client = browser(app, UA_FIREFOX)
    signed_up(client)
    assert LoginSession.get().device_name == "Firefox 128 on Ubuntu"

    def refuse(user_agent):
        raise AssertionError("parsed a User-Agent while listing sessions")

    monkeypatch.setattr(devices, "parse", refuse)
    devices.describe.cache_clear()
    assert "Firefox 128 on Ubuntu" in client.get("/sessions").get_data(as_text=True)
    assert client.get("/api/sessions").get_json()["sessions"][0]["device"] == (
        "Firefox 128 on Ubuntu")


def add_sessions(user: User, count: int, now: float, **fields) -> None:
    rows = [{"public_id": secrets.token_urlsafe(16), "user": user.id, "created_at": now - n,
             "authenticated_at": now - n, "last_active_at": now - n,
             "absolute_expires_at": now + 86400, "current_hash": secrets.token_hex(32),
             "rotated_at": now - n, "user_agent": "Mozilla/5.0 Firefox/1.0", **fields}
            for n in range(1, count + 1)]
    for start in range(0, count, 200):
        LoginSession.insert_many(rows[start:start + 200]).execute()


def test_the_live_list_is_paged_with_this_device_first(ada, clock):
    add_sessions(User.get(), 45, clock())
    here = ada.get("/api/me").get_json()["session_id"]
    first = page(ada.get("/sessions"))
    rows = first.select("[data-session-id]")
    assert len(rows) == PAGE_SIZE and rows[0]["data-session-id"] == here
    assert first.select_one('[data-test="live-older"]')["href"] == "/sessions?live=2"
    last = page(ada.get("/sessions?live=3"))
    assert len(last.select("[data-session-id]")) == 6
    assert not last.select('[data-test="live-older"]')
    api = ada.get("/api/sessions?page=3").get_json()
    assert len(api["sessions"]) == 6 and api["next_page"] is None
    assert ada.get("/api/sessions").get_json()["next_page"] == 2


@pytest.mark.parametrize("path", ["/sessions", "/api/sessions", "/sessions?live=999999",
                                  "/sessions?ended=-3&events=abc"])
def test_a_list_reads_the_same_rows_with_30_sessions_as_with_3000(ada, clock, caplog, path):
    """Measured as the statements the request runs, each SELECT of sessions with a LIMIT
    (peewee's log, whose parameters are hidden): not a timing."""
    def statements(extra: int) -> list[str]:
        add_sessions(User.get(), extra, clock(), ended_at=None)
        add_sessions(User.get(), extra, clock(), ended_at=clock() - 60, end_reason="revoked")
        caplog.clear()
        caplog.set_level(logging.DEBUG, logger="peewee")
        assert ada.get(path).status_code == 200
        return [r.getMessage() for r in caplog.records
                if r.name == "peewee" and '"login_session"' in r.getMessage()
                and "SELECT" in r.getMessage()]

    few, many = statements(15), statements(1500)
    assert few == many and many and all("LIMIT" in sql for sql in many)
