"""Checklist groups 7 and 8: security headers on every response, errors and static files
included; hostile input (redirect targets, sizes, encodings, duplicates, User-Agents) never
leaves the site and never becomes a 500."""

from urllib.parse import urljoin, urlsplit

import pytest
from support import PASSWORD, browser, csrf_token, login, page, register, signed_up
from werkzeug.datastructures import MultiDict

from app.middleware import login_required
from app.models import LoginSession

REQUIRED_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


@pytest.fixture
def app(make_app):
    app = make_app()

    @app.get("/__boom")
    def boom():
        raise RuntimeError("a bug")

    @app.get("/api/__cacheable")
    @login_required
    def cacheable():
        return {"ok": True}, 200, {"Cache-Control": "public, max-age=60", "Vary": "Accept"}

    return app


def check_headers(response, what: str) -> None:
    for name, value in REQUIRED_HEADERS.items():
        assert response.headers.get(name) == value, (what, name)
    csp = response.headers["Content-Security-Policy"]
    directives = dict((d.split(" ", 1) + [""])[:2] for d in csp.split("; "))
    assert directives["frame-ancestors"] == "'none'", what
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'", what
    assert "unsafe-inline" not in directives["script-src"], what
    assert "unsafe-eval" not in csp and "*" not in directives["script-src"], what
    for name in ("Server", "X-Powered-By", "Access-Control-Allow-Origin", "X-XSS-Protection"):
        assert name not in response.headers, (what, name)


def every_kind_of_response(app):
    signed_in = browser(app)
    signed_up(signed_in)
    anonymous = browser(app)
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    return {
        "home": anonymous.get("/"),
        "login page": anonymous.get("/login"),
        "redirect to sign-in": anonymous.get("/account"),
        "401 json": anonymous.get("/api/me"),
        "account": signed_in.get("/account"),
        "sessions": signed_in.get("/sessions"),
        "json": signed_in.get("/api/me"),
        "static file": anonymous.get("/static/gatehouse.css"),
        "404": anonymous.get("/no/such/page"),
        "405": anonymous.get("/logout"),
        "TRACE": anonymous.open("/login", method="TRACE"),
        "413": anonymous.post("/login", data={"email": big}),
        "500": anonymous.get("/__boom"),
        "healthz": anonymous.get("/healthz"),
        "evil origin": anonymous.get("/api/me", headers={"Origin": "https://evil.example"}),
        "null origin": anonymous.get("/", headers={"Origin": "null"}),
    }


def test_every_response_carries_the_security_headers(app):
    responses = every_kind_of_response(app)
    expected = {"405": 405, "TRACE": 405, "413": 413, "500": 500, "404": 404}
    for what, response in responses.items():
        assert response.status_code == expected.get(what, response.status_code), what
        check_headers(response, what)
        if response.mimetype == "text/html":
            assert response.headers["Content-Type"] == "text/html; charset=utf-8", what
        response.close()


def test_the_500_page_is_generic_and_the_app_carries_on(app, caplog):
    response = browser(app).get("/__boom")
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "a bug" not in body and "RuntimeError" not in body
    reference = page(response).find("p").get_text().rsplit("Reference ", 1)[1].rstrip(".")
    assert f"reference {reference}" in caplog.text and "RuntimeError" in caplog.text
    assert browser(app).get("/").status_code == 200
    assert browser(app).get("/console").status_code == 404


def test_no_store_on_authenticated_and_cookie_setting_responses(app, clock):
    client = browser(app)
    register(client)
    responses = {"login page": client.get("/login"), "sign-in": login(client)}
    responses |= {path: client.get(path) for path in ("/account", "/sessions", "/api/me",
                                                      "/api/sessions")}
    clock.advance(app.config["GATEHOUSE_ACCESS_TOKEN_TTL"] + 10)
    responses["rotation"] = client.get("/api/me")
    assert "__Host-session" in str(responses["rotation"].headers.getlist("Set-Cookie"))
    responses["sign-out"] = client.post("/logout",
                                        data={"csrf_token": csrf_token(client.get("/account"))})
    for what, response in responses.items():
        assert response.headers.get("Cache-Control") == "no-store", what


def test_one_persons_responses_are_never_cached_and_vary_on_the_cookie(app):
    """Whatever a view chose: ``no-store`` replaces its Cache-Control, Cookie joins its Vary."""
    client = browser(app)
    signed_up(client)
    for path in ("/api/me", "/account", "/api/__cacheable"):
        response = client.get(path)
        assert response.headers.getlist("Cache-Control") == ["no-store"], path
        vary = [v.strip() for v in ",".join(response.headers.getlist("Vary")).split(",")]
        assert vary.count("Cookie") == 1, (path, vary)
    assert "Accept" in client.get("/api/__cacheable").headers["Vary"]
    anonymous = browser(app).get("/healthz")  # nobody's, and it reads no cookie
    assert "Vary" not in anonymous.headers and "Cache-Control" not in anonymous.headers


def test_hsts_only_over_https(app):
    secure = browser(app).get("/", base_url="https://localhost")
    hsts = secure.headers["Strict-Transport-Security"]
    max_age = int(hsts.split("max-age=")[1].split(";")[0])
    assert max_age >= 31536000 and "includeSubDomains" in hsts
    assert "Strict-Transport-Security" not in browser(app).get("/").headers


def test_hsts_behind_a_trusted_proxy_that_terminated_https(make_app):
    """The headers are added inside ProxyFix, so they see the scheme the client used."""
    app = make_app(GATEHOUSE_TRUSTED_PROXIES=1)
    behind = browser(app).get("/", headers={"X-Forwarded-Proto": "https"})
    assert "max-age=" in behind.headers["Strict-Transport-Security"]
    assert "Strict-Transport-Security" not in browser(app).get("/").headers


def test_pages_contain_no_inline_script_or_event_handlers(app):
    client = browser(app)
    signed_up(client)
    login(browser(app))  # a second session, so that every form on /sessions renders
    for path in ("/", "/login", "/register", "/account", "/sessions", "/account/password"):
        html = page(client.get(path))
        assert all(script.get("src") for script in html.find_all("script")), path
        handlers = [attr for tag in html.find_all(True) for attr in tag.attrs
                    if attr.lower().startswith("on")]
        assert handlers == [], path
        assert "javascript:" not in str(html).lower(), path


# --- inputs -------------------------------------------------------------------------------

REDIRECT_ATTACKS = [
    "https://evil.example", "//evil.example", "/\\evil.example", "\\/evil.example",
    "/%2F%2Fevil.example", "%2F%2Fevil.example", "/%5Cevil.example", "https:evil.example",
    "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "\t//evil.example",
    "%09//evil.example", "/\r\nSet-Cookie:x=y", "/%0d%0aSet-Cookie:x=y", "///evil.example",
    "https://localhost.evil.example/", "http://localhost@evil.example/", "/\x00//evil.example",
    "\u3002evil.example", "//evil%2Eexample", " //evil.example", "/.//evil.example"[2:],
]


def lands_on_site(location: str) -> bool:
    target = urlsplit(urljoin("http://localhost/login", location))
    return target.scheme == "http" and target.netloc == "localhost"


@pytest.mark.parametrize("target", REDIRECT_ATTACKS)
@pytest.mark.parametrize("via", ["form", "query"])
def test_next_never_leaves_the_site(client, target, via):
    register(client)
    if via == "form":
        response = login(client, extra={"next": target})
    else:
        form = page(client.get("/login", query_string={"next": target}))
        carried = form.find("input", attrs={"name": "next"})["value"]
        response = login(client, extra={"next": carried})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert lands_on_site(location), location
    assert "\r" not in location and "\n" not in location
    assert "x=y" not in str(response.headers.getlist("Set-Cookie"))


def test_next_keeps_a_path_on_the_site_and_sends_anything_else_to_the_account(client):
    register(client)
    assert login(client, extra={"next": "/sessions"}).headers["Location"] == "/sessions"
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        assert login(client, extra={"next": target}).headers["Location"] == "/account"


def test_duplicated_parameters_resolve_to_the_first_and_stay_safe(client):
    register(client)
    token = csrf_token(client.get("/login"))
    data = [("csrf_token", token), ("email", "ada@example.com"), ("email", "eve@example.com"),
            ("password", PASSWORD), ("password", "other"), ("next", "/sessions"),
            ("next", "//evil.example")]
    response = client.post("/login", data=MultiDict(data))
    assert response.status_code == 302 and response.headers["Location"] == "/sessions"
    assert client.get("/api/me").get_json()["email"] == "ada@example.com"
    flipped = browser(client.application)
    token = csrf_token(flipped.get("/login"))
    response = flipped.post("/login", data=MultiDict([
        ("csrf_token", token), ("email", "ada@example.com"), ("password", PASSWORD),
        ("next", "//evil.example"), ("next", "/sessions")]))
    location = response.headers["Location"]
    assert lands_on_site(location) and location != "/sessions"


def test_request_bodies_are_capped(app):
    client = browser(app)
    token = csrf_token(client.get("/login"))
    response = client.post("/login", data={"csrf_token": token, "email": "a@b.co",
                                           "password": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413


@pytest.mark.parametrize("form", ["/login", "/register"])
@pytest.mark.parametrize("fields", [
    "email=a%00b%40example.com&password=correct+horse+battery+staple",
    "email=ada%40example.com&password=correct%00horse+battery+staple",
    "email=%C3%28%40example.com&password=%FF%FE%FD",
    "email=ada%40example.com&password=%ED%A0%80%ED%B0%80aaaaaaaaaaaaaaaaaaaaa",
    "email=" + "a" * 10_000 + "%40example.com&password=x",
    "email=ada%0d%0a2026-01-01+INFO+login+success+user%3Dadmin%40example.com&password=x",
    "email=&password=",
    "email[]=a&password[]=b",
])
def test_hostile_form_values_never_cause_a_500(app, form, fields):
    client = browser(app)
    token = csrf_token(client.get(form))
    response = client.post(form, data=f"csrf_token={token}&{fields}",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 302, 400, 401), response.status_code
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/sessions/%00/revoke", "/sessions/%FF%FE/revoke",
                                  "/sessions/" + "a" * 5000 + "/revoke",
                                  "/sessions/x'%20OR%20'1'='1/revoke"])
def test_hostile_session_ids_are_not_found(ada, path):
    token = csrf_token(ada.get("/sessions"))
    assert ada.post(path, data={"csrf_token": token}).status_code == 404
    api = ada.delete("/api" + path.removesuffix("/revoke"), headers={"X-Gatehouse-Request": "1"})
    assert api.status_code == 404


USER_AGENTS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>',
               "</title><svg onload=alert(1)>", "A" * 10_000, "Firefox\r\nX-Injected: 1",
               "Firefox\x00\x1b[31m"]


def test_hostile_user_agents_are_escaped_and_capped_on_the_sessions_page(app):
    viewer = browser(app)
    signed_up(viewer)
    for agent in USER_AGENTS:
        attacker = browser(app, agent)
        assert login(attacker).status_code == 302
    html = viewer.get("/sessions").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html and "<svg" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    agents = [s.user_agent for s in LoginSession.select()]
    assert max(map(len, agents)) <= 512 and all(a.isprintable() for a in agents)
