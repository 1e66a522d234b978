"""Hypothesis over every route and the JSON API: arbitrary methods, paths, headers, cookies,
form, JSON and raw bodies, signed in or not, with or without a valid CSRF token. No response is
a 5xx and nothing is logged at ERROR, on SQLite and on PostgreSQL.

The count is bounded (``FUZZ_EXAMPLES``, default 1,000: about 12 s on SQLite and 35 s on
PostgreSQL here); raise it for a longer hunt, e.g. ``FUZZ_EXAMPLES=6000``. What it found so far:
a Host header that is no host name ("." or "a..b") made the error page itself fail (500).
"""

from __future__ import annotations

import json
import logging
import os
import re
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import PASSWORD, Cookies, csrf_token, signed_up

from app.carriers import ACCESS_COOKIE, SESSION_COOKIE

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"]
FIELDS = ["email", "password", "next", "csrf_token", "current_password", "new_password",
          "name", "password\x00", "é"]
HEADERS = ["Origin", "Sec-Fetch-Site", "X-Gatehouse-Request", "Content-Type", "User-Agent",
           "X-Forwarded-For", "Accept", "Referer", "Host", "Content-Encoding",
           "Transfer-Encoding", "If-None-Match", "Range", "Authorization",
           "Secure-Session-Response", "Sec-Secure-Session-Id"]
COOKIES = [ACCESS_COOKIE, SESSION_COOKIE, "__Host-flask", "__Host-device", "session", "x"]

# Text as hostile as a client can send: NUL, controls, surrogates' neighbours, emoji.
hostile_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
# Header values travel as latin-1 and may not contain a line break.
header_text = st.text(st.characters(min_codepoint=0, max_codepoint=255,
                                    exclude_characters="\r\n"), max_size=40)
segment = st.one_of(
    st.sampled_from(["A" * 22, "revoke", "api", "..", "%", "static", "gatehouse.css"]),
    hostile_text.map(lambda text: quote(text, safe="")),
    st.binary(max_size=12).map(lambda raw: quote_from_bytes(raw, safe="")),
)


def route_paths(app) -> list[str]:
    """Every rule, its variable parts left as ``{}`` for the strategy to fill."""
    return sorted({re.sub(r"<[^>]+>", "{}", rule.rule) for rule in app.url_map.iter_rules()})


@st.composite
def paths(draw, templates: list[str]) -> str:
    template = draw(st.sampled_from(templates + ["/{}", "/api/{}", "/{}/{}"]))
    path = template.replace("{}", "\x00")  # a marker no template contains
    while "\x00" in path:
        path = path.replace("\x00", draw(segment), 1)
    if draw(st.booleans()):
        path += "?" + quote(draw(hostile_text), safe="=&;/%")
    return path


def wsgi_target(target: str) -> dict[str, str]:
    """The environ a WSGI server builds for this request target (PEP 3333: the path
    percent-decoded to bytes, carried as latin-1), "//x" and all, which the test client's own
    URL parsing would take for a host."""
    path, _, query = target.partition("?")
    return {"PATH_INFO": unquote_to_bytes(path).decode("latin-1"), "QUERY_STRING": query,
            "RAW_URI": target, "REQUEST_URI": target}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(FIELDS) | hostile_text, children, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    st.none(),
    st.builds(lambda form: ("form", form),
              st.dictionaries(st.sampled_from(FIELDS) | hostile_text,
                              hostile_text | st.just(PASSWORD), max_size=5)),
    st.builds(lambda value: ("json", value), json_values),
    st.builds(lambda raw, kind: ("raw", raw, kind), st.binary(max_size=200),
              st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                               "multipart/form-data; boundary=x", "text/plain"])),
    st.builds(lambda depth: ("raw", b"[" * depth, "application/json"),
              st.integers(1, 100_000)),
)


@pytest.fixture
def fuzz_target(app):
    """A signed-in browser's cookies and CSRF token, and a client that sends what it is told."""
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR="203.0.113.9")
    signed_up(client)
    token = csrf_token(client.get("/account"))  # also sets the Flask cookie it is bound to
    return app, Cookies.of(client), client.get_cookie("__Host-flask").value, token


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_no_request_gets_a_5xx_or_logs_an_error(fuzz_target, caplog, data):
    app, signed_in, flask_cookie, token = fuzz_target
    caplog.clear()
    caplog.set_level(logging.ERROR)
    method = data.draw(st.sampled_from(METHODS) | st.from_regex(r"\A[A-Z]{1,10}\Z"))
    path = data.draw(paths(route_paths(app)))
    headers = data.draw(st.dictionaries(st.sampled_from(HEADERS), header_text, max_size=4))
    if data.draw(st.booleans()):  # what the site's own scripts send
        headers["X-Gatehouse-Request"] = "1"
    cookies = data.draw(st.dictionaries(st.sampled_from(COOKIES), header_text.filter(
        lambda v: ";" not in v), max_size=3))
    if data.draw(st.booleans()):  # a signed-in browser, whose cookies the fuzzer may spoil
        cookies = {ACCESS_COOKIE: signed_in.access, SESSION_COOKIE: signed_in.session,
                   "__Host-flask": flask_cookie, **cookies}
    body = data.draw(bodies)
    kwargs = {}
    if body and body[0] == "form":
        form = dict(body[1])
        if data.draw(st.booleans()):
            form["csrf_token"] = token
        kwargs["data"] = form
    elif body and body[0] == "json":
        kwargs["data"], kwargs["content_type"] = json.dumps(body[1]), "application/json"
    elif body:
        kwargs["data"], kwargs["content_type"] = body[1], body[2]
    headers.pop("Content-Type", None) if "content_type" in kwargs else None
    client = app.test_client(use_cookies=False)
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    response = client.open("/", method=method, headers=headers,
                           environ_overrides=wsgi_target(path), **kwargs)
    response.close()
    assert response.status_code < 500, (method, path, headers, body, response.status_code)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], (method, path, headers, body)
