"""An app of the product, played by Authlib's OAuth2Session (PKCE S256) over HTTP against
gunicorn, its person signing in and allowing it in Chromium, the loopback redirect caught by a
tiny listener: tokens, the API, refreshes that race or lose their response, a replay, a
revocation from /sessions, DPoP, and key and SECRET_KEY rotation with nobody signed out."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from polling import eventually
from servers import Server, server_env
from support import SECRET
from tcpproxy import LOSE_REPLIES, TcpProxy
from test_apps_dpop import Key

from app import create_app, grants, keystore, liveness, settings
from app.models import LoginSession
from e2e.support import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GRACE = 2  # seconds: a replay is told from a race once this has passed
NEW_SECRET = "the-replacement-secret-key-for-the-e2e-run-0123456789"


class Loopback:
    """The app's redirect listener on 127.0.0.1 (RFC 8252 7.3): catches one redirect."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's name)
                if self.path.startswith("/callback?"):  # not the browser's /favicon.ico
                    hits.append(f"http://127.0.0.1:{self.server.server_port}{self.path}")
                body = b"<!doctype html><title>Done</title><p>You can return to the app."
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/callback"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def local_app(database_url: str, secret: str = SECRET, **extra):
    made = create_app({"TESTING": True, "SECRET_KEY": secret, "DATABASE_URL": database_url,
                       "GATEHOUSE_EMAIL_VERIFICATION": "off", **extra})
    return made


@pytest.fixture(scope="module")
def apps_site(site):
    """A second gunicorn on the suite's database, with a short grace window."""
    env = server_env(site.env["DATABASE_URL"], SECRET, GATEHOUSE_ACCESS_TOKEN_TTL=60,
                     GATEHOUSE_REFRESH_GRACE=GRACE, GATEHOUSE_REGISTER_LIMIT_IP=1000)
    with Server(env, workers=2, threads=4) as server:
        yield server


@pytest.fixture
def here(site):
    """This process's own app on the suite's database: to register apps and read sessions."""
    made = local_app(site.env["DATABASE_URL"])
    with made.app_context():
        yield made
    liveness.close(made)


@pytest.fixture
def loopback():
    listener = Loopback()
    yield listener
    listener.close()


def register(dpop: str = "") -> str:
    """The operator registers the app (``flask clients add``'s own call)."""
    return grants.register("Notes", ["http://127.0.0.1/callback"], dpop=dpop,
                           now=time.time())


def allow_in_browser(person, url: str, loopback) -> str:
    """The person opens the authorize URL in Chromium and presses Allow; the redirect the
    listener caught."""
    loopback.hits.clear()
    person.page.goto(url)
    expect(person.page.get_by_role("heading", level=1)).to_have_text(
        "Sign in to Notes on this device?")
    person.page.get_by_role("button", name="Allow").click()
    return eventually(lambda: loopback.hits and loopback.hits[-1], within=15,
                      what="the redirect to the app's loopback listener")


def sign_in_app(person, apps_site, client_id, loopback) -> OAuth2Session:
    app = OAuth2Session(client_id, redirect_uri=loopback.url, code_challenge_method="S256",
                        token_endpoint_auth_method="none", leeway=5)
    verifier = generate_token(48)
    url, _ = app.create_authorization_url(f"{apps_site.url}/oauth/authorize",
                                          code_verifier=verifier)
    caught = allow_in_browser(person, url, loopback)
    assert f"iss=http%3A%2F%2F127.0.0.1%3A{apps_site.port}" in caught
    app.fetch_token(f"{apps_site.url}/oauth/token", authorization_response=caught,
                    code_verifier=verifier)
    return app


def refresh(base: str, client_id: str, refresh_token: str, **kwargs) -> requests.Response:
    return requests.post(f"{base}/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
        timeout=10, **kwargs)


def me(base: str, access_token: str) -> int:
    return requests.get(f"{base}/api/me", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=10).status_code


def app_session(client_id: str) -> LoginSession:
    return LoginSession.get(LoginSession.client_id == client_id)


def test_an_app_signs_in_calls_the_api_and_refreshes(people, apps_site, here, loopback):
    person = people()
    email = person.sign_up("app")
    client_id = register()
    app = sign_in_app(person, apps_site, client_id, loopback)
    assert app.token["token_type"] == "Bearer"
    answer = app.get(f"{apps_site.url}/api/me", timeout=10)
    assert answer.status_code == 200 and answer.json()["email"] == email
    before = app.token["refresh_token"]
    app.refresh_token(f"{apps_site.url}/oauth/token")
    assert app.token["refresh_token"] != before
    assert app.get(f"{apps_site.url}/api/me", timeout=10).status_code == 200
    sessions = person.go("/sessions")
    card = sessions.locator(f'[data-session-id="{app_session(client_id).public_id}"]')
    expect(card).to_contain_text("Notes")


def test_parallel_refreshes_and_a_lost_response_never_sign_the_app_out(people, apps_site, here,
                                                                       loopback):
    person = people()
    person.sign_up("race")
    client_id = register()
    token = sign_in_app(person, apps_site, client_id, loopback).token
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: refresh(apps_site.url, client_id,
                                                  token["refresh_token"]), range(8)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["refresh_token"] for a in answers}) == 1
    current = answers[0].json()
    assert me(apps_site.url, current["access_token"]) == 200
    proxy = TcpProxy(apps_site.port)
    try:
        generation = app_session(client_id).generation
        proxy.mode = LOSE_REPLIES
        with pytest.raises(requests.ConnectionError):
            refresh(f"http://127.0.0.1:{proxy.port}", client_id, current["refresh_token"])
        eventually(lambda: app_session(client_id).generation > generation, within=10,
                   what="the lost refresh rotated the session")
        proxy.restore()
        time.sleep(GRACE + 1)  # past the grace window: only the lost-response rule helps
        retried = refresh(f"http://127.0.0.1:{proxy.port}", client_id, current["refresh_token"])
    finally:
        proxy.close()
    assert retried.status_code == 200
    assert me(apps_site.url, retried.json()["access_token"]) == 200
    assert app_session(client_id).ended_at is None


def test_a_replay_after_the_successor_was_used_ends_the_session(people, apps_site, here,
                                                                loopback):
    person = people()
    person.sign_up("replay")
    client_id = register()
    token = sign_in_app(person, apps_site, client_id, loopback).token
    successor = refresh(apps_site.url, client_id, token["refresh_token"]).json()
    assert me(apps_site.url, successor["access_token"]) == 200  # the successor is proven
    time.sleep(GRACE + 1)
    replay = refresh(apps_site.url, client_id, token["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert me(apps_site.url, successor["access_token"]) == 401
    ended = person.go("/sessions").locator('[data-end-reason="reuse_detected"]')
    expect(ended).to_contain_text("Notes")


def test_revoking_the_app_on_the_sessions_page_makes_its_next_call_401(people, apps_site, here,
                                                                       loopback):
    person = people()
    person.sign_up("revoke")
    client_id = register()
    token = sign_in_app(person, apps_site, client_id, loopback).token
    assert me(apps_site.url, token["access_token"]) == 200
    sessions = person.go("/sessions")
    card = sessions.locator(f'[data-session-id="{app_session(client_id).public_id}"]')
    card.locator('[data-test="revoke"]').click()
    person.page.wait_for_load_state()
    assert me(apps_site.url, token["access_token"]) == 401
    assert refresh(apps_site.url, client_id, token["refresh_token"]).status_code == 400


def test_dpop_bound_and_unbound(people, apps_site, here, loopback):
    person = people()
    person.sign_up("dpop")
    key = Key()
    token_url = f"{apps_site.url}/oauth/token"
    for mode, bound in (("required", True), ("optional", False)):
        client_id = register(dpop=mode)
        app = OAuth2Session(client_id, redirect_uri=loopback.url, code_challenge_method="S256",
                            token_endpoint_auth_method="none")
        verifier = generate_token(48)
        url, _ = app.create_authorization_url(f"{apps_site.url}/oauth/authorize",
                                              code_verifier=verifier)
        caught = allow_in_browser(person, url, loopback)
        code = dict(pair.split("=", 1) for pair in caught.split("?", 1)[1].split("&"))["code"]
        headers = {"DPoP": key.proof("POST", token_url)} if bound else {}
        tokens = requests.post(token_url, headers=headers, timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": loopback.url,
            "code_verifier": verifier, "client_id": client_id}).json()
        assert tokens["token_type"] == ("DPoP" if bound else "Bearer")
        api = f"{apps_site.url}/api/me"
        if not bound:
            assert me(apps_site.url, tokens["access_token"]) == 200
            continue
        proof = key.proof("GET", api, access_token=tokens["access_token"])
        assert requests.get(api, timeout=10, headers={
            "Authorization": f"DPoP {tokens['access_token']}", "DPoP": proof}).status_code == 200
        assert me(apps_site.url, tokens["access_token"]) == 401  # as a Bearer token: refused
        copied = refresh(apps_site.url, client_id, tokens["refresh_token"])
        assert copied.status_code == 400  # a copy without the key
        assert app_session(client_id).ended_at is None
        renewed = refresh(apps_site.url, client_id, tokens["refresh_token"],
                          headers={"DPoP": key.proof("POST", token_url)})
        assert renewed.status_code == 200 and renewed.json()["token_type"] == "DPoP"


def test_key_and_secret_key_rotation_sign_nobody_out(people, site, apps_site, here, loopback):
    person = people()
    email = person.sign_up("rotation")
    client_id = register()
    token = sign_in_app(person, apps_site, client_id, loopback).token
    keystore.rotate(settings.current().keys.signing, now=time.time(), publish_ahead=0)
    renewed = refresh(apps_site.url, client_id, token["refresh_token"]).json()
    assert me(apps_site.url, renewed["access_token"]) == 200
    person.go("/account")
    person.expect_signed_in(email)
    env = server_env(site.env["DATABASE_URL"], NEW_SECRET,
                     GATEHOUSE_SECRET_KEY_FALLBACKS=SECRET, GATEHOUSE_ACCESS_TOKEN_TTL=2)
    with Server(env, workers=1, threads=4) as replaced:
        assert me(replaced.url, renewed["access_token"]) == 200
        again = refresh(replaced.url, client_id, renewed["refresh_token"])
        assert again.status_code == 200
        assert me(replaced.url, again.json()["access_token"]) == 200
        person.context.clear_cookies(name="__Host-access")
        reply = person.page.goto(f"{replaced.url}/api/me")
        assert reply.status == 200  # the browser too, its session value renewed
    assert app_session(client_id).ended_at is None
