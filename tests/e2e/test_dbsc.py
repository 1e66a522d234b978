"""Device Bound Session Credentials in a real Chromium: gunicorn over HTTPS with a certificate
this test makes, Chromium with the DBSC features and that certificate trusted by the hash of its
public key. The browser registers a key, stays signed in across several access-token expiries
(each renewal a signed refresh), and a plain HTTP client holding a copy of every cookie is
refused once the copied access token expires. Chromium that never registers fails the test: a
Chromium upgrade that changes the protocol must be noticed, not skipped.

It measures what a copy of the cookies is worth, in seconds, with the binding and without it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from polling import eventually
from servers import ROOT, Server, server_env
from support import CHEAP_ARGON2, PASSWORD, SECRET

from app import create_app, liveness, tokens
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.models import LoginSession, SecurityEvent
from e2e.support import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, new_email, require_browser

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ACCESS_TTL = 4  # seconds: several expiries, each renewed by a signed refresh, in a few seconds
EXPIRIES = 4  # the browser must stay signed in across this many
DBSC_FEATURES = ("--enable-features=DeviceBoundSessions:RequireOriginTrialTokens/false/"
                 "RefreshQuota/false,EnableBoundSessionCredentialsSoftwareKeysForManualTesting")
THIEF = "127.0.0.9"  # the copy is used from another address, as the timeline must show


def make_certificate(folder: Path) -> tuple[Path, Path, str]:
    """A self-signed P-256 certificate for localhost and 127.0.0.1: its file, its key's file,
    and the base64 SHA-256 of its SubjectPublicKeyInfo (what Chromium is told to trust)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert_file, key_file, base64.b64encode(hashlib.sha256(spki).digest()).decode()


class HttpsServer(Server):
    """gunicorn serving HTTPS with the given certificate (the one change DBSC needs)."""

    certificate: tuple[Path, Path] = (Path(), Path())

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def launch(self) -> HttpsServer:
        cert, key = self.certificate
        command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                   "--workers", str(self.workers), "--threads", str(self.threads),
                   "--certfile", str(cert), "--keyfile", str(key),
                   "--graceful-timeout", "5", "--log-level", "warning", self.app]
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **self.env},
                                        stdout=subprocess.DEVNULL, stderr=self.log)
        return self

    def wait_ready(self) -> HttpsServer:
        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.output()}")
            try:
                return fetch(self.port, "/healthz", {})[0] == 200
            except OSError:
                return False

        eventually(answers, within=30, every=0.1, what="gunicorn answering over HTTPS")
        return self


class Jar(dict):
    """Cookies that a client drops at their Max-Age, as a browser does."""

    def __init__(self) -> None:
        super().__init__()
        self.expiry: dict[str, float] = {}

    def drop_expired(self) -> None:
        for name, at in list(self.expiry.items()):
            if time.monotonic() >= at:
                self.pop(name, None)
                del self.expiry[name]


def fetch(port: int, path: str, jar: dict[str, str], *, method: str = "GET",
          source: str | None = None, keep: bool = False, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """A plain HTTP client (no DBSC) over HTTPS: the request with the cookies of ``jar``; with
    ``keep``, the cookies the response sets are kept, as any client would."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context,
                                             source_address=(source, 0) if source else None)
    try:
        sent = dict(headers or {})
        if isinstance(jar, Jar):
            jar.drop_expired()
        if jar:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        answer = response.read()
        if keep:
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    parsed = SimpleCookie()
                    parsed.load(value)
                    for key, morsel in parsed.items():
                        if morsel["max-age"] == "0":
                            jar.pop(key, None)
                        else:
                            jar[key] = morsel.value
                            if isinstance(jar, Jar) and morsel["max-age"]:
                                jar.expiry[key] = time.monotonic() + int(morsel["max-age"])
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(answer)
        return response.status, answer
    finally:
        connection.close()


@pytest.fixture(scope="module")
def https_site(site, tmp_path_factory):
    """A second gunicorn on the suite's database (``site``'s, whose schema it already has),
    over HTTPS with a certificate made here. Every scenario signs up people of its own."""
    require_browser()
    folder = tmp_path_factory.mktemp("dbsc")
    cert, key, spki = make_certificate(folder)
    url = site.env["DATABASE_URL"]
    settings = {"TESTING": True, "SECRET_KEY": SECRET, "DATABASE_URL": url,
                "GATEHOUSE_EMAIL_VERIFICATION": "off", **CHEAP_ARGON2}
    app = create_app(settings)
    env = server_env(url, SECRET, GATEHOUSE_ACCESS_TOKEN_TTL=ACCESS_TTL,
                     GATEHOUSE_REGISTER_LIMIT_IP=1000)
    server = HttpsServer(env, workers=2, threads=4)
    server.certificate = (cert, key)
    try:
        with server:
            yield server, app, spki
    finally:
        liveness.close(app)


@pytest.fixture(scope="module")
def dbsc_chromium(playwright, https_site):
    spki = https_site[2]
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, timeout=60_000,
        args=[*CHROMIUM_ARGS, DBSC_FEATURES, f"--ignore-certificate-errors-spki-list={spki}"])
    try:
        yield browser
    finally:
        browser.close()


def session_row(app, public_id: str) -> LoginSession:
    with app.app_context():
        return LoginSession.get(LoginSession.public_id == public_id)


def events(app, session: LoginSession, kind: str) -> list[SecurityEvent]:
    with app.app_context():
        return list(SecurityEvent.select().where(SecurityEvent.session == session.id,
                                                 SecurityEvent.kind == kind))


def sign_up_in_browser(page, base: str) -> str:
    email = new_email("dbsc")
    page.goto(f"{base}/register")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account", exact=True).click()
    page.goto(f"{base}/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()
    return email


def test_a_bound_browser_stays_signed_in_and_a_copy_of_its_cookies_dies_with_its_token(
        https_site, dbsc_chromium):
    server, app, _ = https_site
    context = dbsc_chromium.new_context(base_url=server.url, ignore_https_errors=False)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        email = sign_up_in_browser(page, server.url)
        me = page.evaluate("() => fetch('/api/me').then(r => r.json())")
        assert me["email"] == email
        session_id = me["session_id"]

        def bound() -> bool:
            return bool(session_row(app, session_id).key_thumbprint)

        try:
            eventually(bound, within=15, every=0.2, what="Chromium registering a DBSC key")
        except AssertionError:
            raise AssertionError(
                "Chromium never registered a device-bound session: the DBSC protocol of this "
                "Chromium differs from what Gatehouse speaks (see README, Device-bound "
                f"sessions). Server log:\n{server.output()}") from None
        assert len(events(app, session_row(app, session_id), "key_bound")) == 1

        # The thief's copy: every cookie the browser holds, taken now.
        copy = {c["name"]: c["value"] for c in context.cookies()}
        assert {ACCESS_COOKIE, SESSION_COOKIE} <= set(copy)
        copied_at = time.monotonic()
        assert fetch(server.port, "/api/me", dict(copy), source=THIEF)[0] == 200

        refused_after = None
        generation = session_row(app, session_id).generation
        deadline = copied_at + EXPIRIES * ACCESS_TTL + 1
        while time.monotonic() < deadline:
            # The owner's browser: signed in on every call, never asked anything.
            assert page.evaluate("() => fetch('/api/me').then(r => r.status)") == 200
            status, body = fetch(server.port, "/api/me", dict(copy), source=THIEF)
            if status != 200 and refused_after is None:
                refused_after = time.monotonic() - copied_at
                assert status == 401 and body.get("reason") == "key_missing", body
            elif refused_after is not None:
                assert status == 401, "a refused copy was served again"
            time.sleep(0.5)
        page.goto(f"{server.url}/account")
        assert page.locator('[data-test="email"]').text_content() == email

        assert refused_after is not None, "the copied cookies were still served"
        # At most the copied token's lifetime (and the 5 s leeway every token is checked with).
        assert refused_after <= ACCESS_TTL + 6
        row = session_row(app, session_id)
        assert row.ended_at is None, "a copy without the key must not end the session"
        # Renewed by signed refreshes, each a rotation seen on the server.
        assert row.generation - generation >= EXPIRIES - 1, (row.generation, generation)
        refused = events(app, row, "key_missing")
        assert refused and {e.ip_address for e in refused} == {THIEF}

        page.goto(f"{server.url}/sessions/{session_id}")
        timeline = page.locator("main").text_content()
        assert "Bound to this device's key" in timeline
        assert f"Refused a copy without this device's key, from {THIEF}" in timeline
        page.goto(f"{server.url}/sessions")
        assert page.locator(f'[data-session-id="{session_id}"] [data-field="bound"]').count() == 1

        # A copy taken while the owner's browser then sits idle: it dies with its token.
        idle_copy = {c["name"]: c["value"] for c in context.cookies()}
        taken_at = time.monotonic()
        eventually(lambda: fetch(server.port, "/api/me", idle_copy, source=THIEF)[0] == 401,
                   within=ACCESS_TTL + 8, every=0.25, what="a copy refused once its token expired")
        idle_worth = time.monotonic() - taken_at
        assert session_row(app, session_id).ended_at is None
        print(f"\nDBSC: {row.generation - generation} signed refreshes in {EXPIRIES} access "
              f"lifetimes of {ACCESS_TTL} s; a copy was served for {refused_after:.1f} s while "
              f"its owner browsed, {idle_worth:.1f} s while the owner's browser sat idle")

        # "Sign out all other sessions" sets no new cookies for a bound session: it removes
        # the access cookie, and Chromium renews it with a signed refresh before the next page.
        other = Jar()
        assert post_form(server.port, "/login", {"email": email, "password": PASSWORD},
                         other)[0] == 302
        before = session_row(app, session_id).generation
        page.goto(f"{server.url}/sessions/revoke-others")
        value = {c["name"]: c["value"] for c in context.cookies()}[SESSION_COOKIE]
        page.locator('[data-test="confirm-revoke-others"]').click()
        page.wait_for_load_state()
        assert page.url.endswith("/sessions"), page.url
        assert page.locator(f'[data-session-id="{session_id}"]').count() == 1
        row = session_row(app, session_id)
        assert row.ended_at is None and row.generation > before, "no signed refresh followed"
        # Every value since is a rotation's successor (Chromium may also renew ahead of time);
        # a re-key's random value would break the chain.
        renewed = {c["name"]: c["value"] for c in context.cookies()}[SESSION_COOKIE]
        chain, keys = [value], tokens.Keys.derive(SECRET)
        for _ in range(row.generation - before + 1):
            chain.append(tokens.successor_handle(keys, chain[-1]))
        assert renewed in chain[1:], "the session value was replaced without a proof of the key"
    finally:
        context.close()


def test_without_the_binding_a_copy_outlives_every_expiry(https_site):
    """The same theft from a client that never registers a key (a browser without DBSC, or the
    setting off): the copy renews itself at every expiry while its owner is away, for as long
    as the session may live."""
    server, app, _ = https_site
    owner = Jar()
    email = new_email("plain")
    post_form(server.port, "/register", {"email": email, "password": PASSWORD}, owner)
    assert post_form(server.port, "/login", {"email": email, "password": PASSWORD},
                     owner)[0] == 302
    copy = Jar()  # the owner closes the browser; the thief keeps using a copy of its jar
    copy.update(owner)
    copy.expiry.update(owner.expiry)
    copied_at = time.monotonic()
    while time.monotonic() < copied_at + EXPIRIES * ACCESS_TTL + 1:
        status, body = fetch(server.port, "/api/me", copy, source=THIEF, keep=True)
        assert status == 200, body
        time.sleep(0.5)
    served = time.monotonic() - copied_at
    row = session_row(app, body["session_id"])
    assert not row.key_thumbprint and row.ended_at is None and row.generation >= EXPIRIES - 1
    print(f"\nwithout DBSC: a copy of the cookies was still served after {served:.1f} s and "
          f"{row.generation} renewals; it lasts until the session's idle or maximum age")


def post_form(port: int, path: str, data: dict[str, str], jar: Jar) -> tuple[int, Any]:
    """Submit a form the way a plain client does: its page first, for the CSRF token."""
    from urllib.parse import urlencode

    from support import csrf_token_in

    status, page = fetch(port, path, jar, keep=True)
    body = urlencode({"csrf_token": csrf_token_in(page), **data}).encode()
    return fetch(port, path, jar, method="POST", body=body, keep=True,
                 headers={"Content-Type": "application/x-www-form-urlencoded",
                          "Origin": f"https://127.0.0.1:{port}"})
