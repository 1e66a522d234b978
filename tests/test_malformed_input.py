"""Hostile bytes in every form field, cookie and session id: a NUL (which PostgreSQL text cannot
hold), bytes that are not UTF-8, and 10 KB values. Each is refused (400, or the form shown again
with an error) or ignored, never a 500, on SQLite and PostgreSQL alike, and nothing changes.

Form values are sent as raw bytes, both urlencoded (a body that is not UTF-8 is dropped whole,
so the CSRF check refuses it) and multipart (bad bytes decode to U+FFFD, which forms refuse).
"""

from __future__ import annotations

from urllib.parse import quote_from_bytes

import pytest
from flask import Request
from support import PASSWORD, Cookies, browser, csrf_token, login, signed_up, submit
from werkzeug.test import EnvironBuilder

from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.middleware import CookieRequest
from app.models import LoginSession, SecurityEvent, User

PAYLOADS = {
    "nul": b"ada\x00@example.com correct horse",
    "invalid-utf8": b"\xff\xfe\xc3\x28 correct horse battery \xa0\xa1",
    "10kb": b"a" * 10 * 1024,
}
payloads = pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
FLASK_COOKIE = "__Host-flask"
BOUNDARY = b"gatehouse-boundary"


@pytest.fixture(params=["urlencoded", "multipart"])
def encoding(request) -> str:
    return request.param


def urlencoded(fields: dict[str, bytes]) -> tuple[bytes, str]:
    # Only the separators are escaped: every other byte reaches the server as it is.
    escape = {ord(c): f"%{ord(c):02X}".encode() for c in "&=+% "}
    body = b"&".join(name.encode() + b"=" + b"".join(escape.get(byte, bytes([byte]))
                                                     for byte in value)
                     for name, value in fields.items())
    return body, "application/x-www-form-urlencoded"


def multipart(fields: dict[str, bytes]) -> tuple[bytes, str]:
    parts = [b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="' + name.encode()
             + b'"\r\n\r\n' + value + b"\r\n" for name, value in fields.items()]
    body = b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"
    return body, f"multipart/form-data; boundary={BOUNDARY.decode()}"


def post_raw(client, path: str, fields: dict[str, str | bytes], encoding: str, *,
             form_page: str | None = None):
    """Post a form whose values may be any bytes, with a real CSRF token."""
    token = csrf_token(client.get(form_page or path))
    raw = {name: value if isinstance(value, bytes) else value.encode()
           for name, value in {"csrf_token": token, **fields}.items()}
    body, content_type = (urlencoded if encoding == "urlencoded" else multipart)(raw)
    return client.post(path, data=body, content_type=content_type)


def refused(response) -> None:
    assert response.status_code in (200, 400, 401), response.status_code


@pytest.mark.parametrize("field", ["email", "password"])
@payloads
def test_register(client, encoding, field, payload):
    fields = {"email": "eve@example.com", "password": PASSWORD, field: payload}
    refused(post_raw(client, "/register", fields, encoding))
    assert User.select().count() == 0


@pytest.mark.parametrize("field", ["email", "password"])
@payloads
def test_login_gives_the_generic_failure(client, encoding, field, payload):
    signed_up(browser(client.application))
    fields = {"email": "ada@example.com", "password": PASSWORD, field: payload}
    response = post_raw(client, "/login", fields, encoding)
    assert response.status_code in (400, 401)
    assert Cookies.of(client) == Cookies(None, None)
    assert LoginSession.select().count() == 1  # only the other browser's


@payloads
def test_login_next_never_leaves_the_site(client, encoding, payload):
    signed_up(browser(client.application))
    fields = {"email": "ada@example.com", "password": PASSWORD, "next": payload}
    response = post_raw(client, "/login", fields, encoding)
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/")
        assert not response.headers["Location"].startswith("//")


@pytest.mark.parametrize("field", ["current_password", "new_password"])
@payloads
def test_password_change(ada, encoding, field, payload):
    fields = {"current_password": PASSWORD, "new_password": "a different long passphrase",
              field: payload}
    before = User.get().password_hash
    refused(post_raw(ada, "/account/password", fields, encoding))
    assert User.get().password_hash == before
    assert ada.get("/account").status_code == 200


@pytest.mark.parametrize("action", ["revoke", "revoke-others"])
@payloads
def test_revoke_confirmation(ada, clock, encoding, action, payload):
    """The confirmation password is read only once re-authentication is due."""
    other = browser(ada.application)
    login(other)
    (victim,) = [s for s in LoginSession.select() if s.public_id != ada.get("/api/me").json[
        "session_id"]]
    clock.advance(3600)  # past the re-authentication window (and the access token's life)
    path = (f"/sessions/{victim.public_id}/revoke" if action == "revoke"
            else "/sessions/revoke-others")
    response = post_raw(ada, path, {"password": payload}, encoding, form_page="/sessions")
    assert response.status_code in (400, 401)  # 401: the confirmation page, field marked
    assert LoginSession.select().where(LoginSession.ended_at.is_null()).count() == 2
    assert other.get("/api/me").status_code == 200


@payloads
def test_session_id_in_the_path(ada, payload):
    quoted = quote_from_bytes(payload, safe="")
    form = post_raw(ada, f"/sessions/{quoted}/revoke", {}, "urlencoded", form_page="/sessions")
    api = ada.delete(f"/api/sessions/{quoted}", headers={"X-Gatehouse-Request": "1"})
    assert (form.status_code, api.status_code) == (404, 404)
    assert LoginSession.select().where(LoginSession.ended_at.is_null()).count() == 1


def raw_cookie_header(cookies: dict[str, str]) -> str:
    # The WSGI environ carries header bytes as latin-1 text: this sends them unchanged.
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


@pytest.mark.parametrize("name", [ACCESS_COOKIE, SESSION_COOKIE, FLASK_COOKIE])
@payloads
def test_cookie_alone_is_not_signed_in(app, name, payload):
    client = app.test_client(use_cookies=False)
    header = raw_cookie_header({name: payload.decode("latin-1")})
    assert client.get("/api/me", headers={"Cookie": header}).status_code == 401
    assert client.get("/account", headers={"Cookie": header}).status_code == 302
    assert client.get("/login", headers={"Cookie": header}).status_code == 200


@pytest.mark.parametrize("name", [ACCESS_COOKIE, SESSION_COOKIE, FLASK_COOKIE])
@payloads
def test_cookie_beside_valid_ones_is_ignored(ada, name, payload):
    """One bad cookie among good ones: the good ones still authenticate (rotating if needed)."""
    jar = {ACCESS_COOKIE: ada.get_cookie(ACCESS_COOKIE).value,
           SESSION_COOKIE: ada.get_cookie(SESSION_COOKIE).value,
           name: payload.decode("latin-1")}
    client = ada.application.test_client(use_cookies=False)
    response = client.get("/api/me", headers={"Cookie": raw_cookie_header(jar)})
    assert response.status_code == 200
    assert LoginSession.get().ended_at is None


def test_requests_refused_before_the_middleware_are_not_500s(ada):
    """A missing CSRF token or a cross-site post is refused before authentication runs."""
    assert ada.post("/logout").status_code == 400
    cross_site = submit(ada, "/logout", {}, form_page="/account",
                        headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    assert LoginSession.get().ended_at is None


@pytest.mark.parametrize("header", [
    "", "a=1", "a=1; a=2; b=3", 'q="a b\\"c"; r=x', "=novalue; ;; k=v=w", "a=1;b=2 ; c",
    *(payload.decode("latin1") for payload in PAYLOADS.values()),
])
def test_cookies_are_parsed_as_werkzeug_parses_them(header):
    """CookieRequest only skips werkzeug's scan of the environ for the Cookie header."""
    environ = EnvironBuilder(headers={"Cookie": header} if header else {}).get_environ()
    mine, theirs = CookieRequest(environ).cookies, Request(environ).cookies
    assert list(mine.items(multi=True)) == list(theirs.items(multi=True))


@pytest.mark.parametrize("method, path, headers, status", [
    ("POST", "/sessions/AB%00CD/revoke", {}, 400),  # no CSRF token: recorded with the path
    ("POST", "/api/x%00y", {"Origin": "https://evil.example"}, 403),
    ("POST", "/sessions/%FF%FE%00/revoke", {}, 400),
    ("POST", "/api/\u2028%0D%0A%00", {"Sec-Fetch-Site": "cross-site"}, 403),
])
def test_a_refused_request_with_nul_in_its_path_is_recorded_not_a_500(
        ada, caplog, method, path, headers, status):
    """The refusal is an event whose detail holds the path; PostgreSQL text cannot hold NUL."""
    response = ada.open(path, method=method, headers=headers)
    assert response.status_code == status
    assert "Reference" not in response.get_data(as_text=True)
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
    assert SecurityEvent.select().where(SecurityEvent.kind == "csrf_failed").count() == 1


def test_json_nested_too_deeply_is_malformed_input_not_a_500(ada, caplog):
    """60,000 ``[`` make the JSON parser recurse past Python's limit: a malformed body."""
    response = ada.delete("/api/sessions/" + "A" * 22, data="[" * 60_000,
                          headers={"X-Gatehouse-Request": "1",
                                   "Content-Type": "application/json"})
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


@pytest.mark.parametrize("method, path", [
    ("GET", "/"), ("GET", "/login"), ("GET", "/api/me"), ("GET", "/no-such-page"),
    ("POST", "/logout"), ("POST", "/api/sessions"),  # refused by the CSRF or origin check
])
@pytest.mark.parametrize("host", [".", "a..b", "x" * 70 + ".example"])
def test_a_host_header_that_is_no_host_name_is_a_400(client, caplog, method, path, host):
    """Found by tests/test_fuzz.py: no URL can be built for such a request, and the error
    page itself links by URL."""
    response = client.open(path, method=method, headers={"Host": host,
                                                         "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == (403 if path == "/api/sessions" else 400)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
