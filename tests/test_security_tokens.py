"""Checklist group 4: every access-token attack of the catalogue, sent as ``__Host-access`` with
no session cookie (so nothing can be rotated). None authenticates, none reveals data, none is a
500, none makes an outbound connection."""

import base64
import hashlib
import hmac
import json
import socket
import urllib.request

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from support import SECRET, browser, fixed_keys, signed_up

from app import settings, signing, tokens
from app.carriers import ACCESS_COOKIE
from app.settings import ISSUER

# The HMAC key access tokens were signed with before ES256: forging with it is an attack too.
OLD_KEY = hmac.new(SECRET.encode(), b"gatehouse access-token v1", hashlib.sha256).digest()
GENUINE = "genuine"  # sign with the app's own signing key; as a kid: that key's id
# The app's signing key, found by the ``genuine`` fixture (a stand-in while tests are collected).
SIGNER: dict = {"private": ec.generate_private_key(ec.SECP256R1())}
HEADER = {"alg": "ES256", "typ": "at+jwt", "kid": GENUINE}
NOT_UTF8 = b'\xff\xfe{"alg":"HS256"}'
PUBLIC_PEM = (b"-----BEGIN PUBLIC KEY-----\n"
              b"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n"
              b"q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n"
              b"-----END PUBLIC KEY-----\n")


def b64(raw: bytes | str) -> str:
    raw = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def segment(value: dict) -> str:
    return b64(json.dumps(value, separators=(",", ":")))


def forge(header: dict, claims: dict | list, key: object = GENUINE,
          digest=hashlib.sha256) -> str:
    """A token built by hand: any header, any claims; signed with the app's own key (``key``
    GENUINE and ``alg`` ES256), HMAC-signed with ``key`` (GENUINE: the old derived key), or
    unsigned (None)."""
    if header.get("kid") == GENUINE:
        header = {**header, "kid": SIGNER.get("kid", "k")}
    signing_input = f"{segment(header)}.{segment(claims)}"
    if key is None:
        return signing_input + "."
    if header.get("alg") == "ES256" and (key == GENUINE
                                         or isinstance(key, ec.EllipticCurvePrivateKey)):
        private = SIGNER["private"] if key == GENUINE else key
        signature = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input.encode(), private)
        return f"{signing_input}.{b64(signature)}"
    secret = OLD_KEY if key == GENUINE else key
    assert isinstance(secret, bytes)
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), digest).digest())}"


def without(claims: dict, name: str) -> dict:
    return {k: v for k, v in claims.items() if k != name}


def tamper_payload(token: str, **changes) -> str:
    """Change claims but keep the original signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{segment({**claims, **changes})}.{signature}"


def attacks(c: dict, victim: dict) -> dict[str, str]:
    """Every attack, keyed by name, built from the claims ``c`` of a genuine token of ours."""
    valid = forge(HEADER, c)
    signature = valid.rsplit(".", 1)[1]
    table = {f"alg {alg}": forge({"alg": alg, "typ": "at+jwt"}, c, key=None)
             for alg in ("none", "None", "NONE", "nOnE")}
    table |= {
        "stripped signature": valid.rsplit(".", 1)[0] + ".",
        "signature removed entirely": valid.rsplit(".", 1)[0],
        "empty-key HMAC": forge(HEADER, c, key=b""),
        "RS256 header, HMAC with the secret": forge({**HEADER, "alg": "RS256"}, c,
                                                    key=OLD_KEY),
        "ES256 header, HMAC with the secret": forge(HEADER, c, key=OLD_KEY),
        "HS256 with the secret's old derived key": forge({**HEADER, "alg": "HS256"}, c),
        "HS256 keyed with a public key PEM": forge({**HEADER, "alg": "HS256"}, c,
                                                   key=SIGNER.get("pem", PUBLIC_PEM)),
        "HS256 keyed with the public JWK's JSON": forge({**HEADER, "alg": "HS256"}, c,
                                                        key=SIGNER.get("jwk", b"{}")),
        "HS384 with the right secret": forge({**HEADER, "alg": "HS384"}, c,
                                              digest=hashlib.sha384),
        "HS512 with the right secret": forge({**HEADER, "alg": "HS512"}, c,
                                              digest=hashlib.sha512),
        "ES256 signed by another key of the same kid": forge(
            HEADER, c, key=SIGNER.get("other", b"x")),
        "no kid, genuine signature": forge({"alg": "ES256", "typ": "at+jwt"}, c),
        "kid of no key, genuine signature": forge({**HEADER, "kid": "A" * 43}, c),
        "jwk injected, signed with it": forge(
            {**HEADER, "jwk": {"kty": "oct", "k": b64(b"attacker key")}}, c, key=b"attacker key"),
        "jku injected": forge({**HEADER, "jku": "https://attacker.test/jwks.json"}, c,
                              key=b"attacker key"),
        "x5u injected": forge({**HEADER, "x5u": "https://attacker.test/cert.pem"}, c,
                              key=b"attacker key"),
        "jku beside a genuine signature": forge({**HEADER, "jku": "https://attacker.test/j"}, c),
        "generation as a string": forge(HEADER, {**c, "gen": "0"}),
        "negative generation": forge(HEADER, {**c, "gen": -1}),
        "generation never issued": forge(HEADER, {**c, "gen": 7}),
        "kid empty": forge({**HEADER, "kid": ""}, c, key=b""),
        "kid path traversal": forge({**HEADER, "kid": "../../../../dev/null"}, c, key=b""),
        "kid SQL injection": forge({**HEADER, "kid": "x' UNION SELECT 'k'--"}, c, key=b"k"),
        "kid shell injection": forge({**HEADER, "kid": "`sleep 10`"}, c, key=b"k"),
        "kid beside a genuine signature": forge({**HEADER, "kid": "1"}, c),
        "sub of another person, wrong key": forge(HEADER, {**c, "sub": victim["user_id"]},
                                                  key=b"guessed secret"),
        "sid of another session, wrong key": forge(HEADER, {**c, "sid": victim["session_id"]},
                                                   key=b"guessed secret"),
        "sub tampered, original signature": tamper_payload(valid, sub=victim["user_id"]),
        "sid tampered, original signature": tamper_payload(valid, sid=victim["session_id"]),
        "wrong iss": forge(HEADER, {**c, "iss": "https://evil.example"}),
        "wrong aud": forge(HEADER, {**c, "aud": "other"}),
        "aud a list without ours": forge(HEADER, {**c, "aud": ["other", "evil"]}),
        "typ JWT": forge({**HEADER, "typ": "JWT"}, c),
        "typ missing": forge({"alg": "ES256", "kid": GENUINE}, c),
        "expired beyond the leeway": forge(HEADER, {**c, "exp": c["iat"] - 6}),
        "nbf in the future": forge(HEADER, {**c, "nbf": c["iat"] + 120}),
        "iat in the future": forge(HEADER, {**c, "iat": c["iat"] + 3600,
                                            "exp": c["iat"] + 3900}),
        "exp as a string": forge(HEADER, {**c, "exp": str(c["exp"])}),
        "two segments": f"{segment(HEADER)}.{segment(c)}",
        "four segments": valid + ".e30",
        "empty segments": "..",
        "bad base64": "!!!.@@@.###",
        "non-JSON header": ".".join([b64("not json"), segment(c), signature]),
        "non-UTF-8 header": ".".join([b64(NOT_UTF8), segment(c), signature]),
        "JSON array payload": forge(HEADER, [c]),
        "10 KB cookie": "a" * 10 * 1024,
        "10 KB of a token's alphabet": (valid + "A" * 10 * 1024),
    }
    table |= {f"{name} missing": forge(HEADER, without(c, name)) for name in tokens.REQUIRED_CLAIMS}
    return table


@pytest.fixture
def genuine(app, clock):
    """Claims of a real session of ada, plus bob's ids as the victim of tampering; the app's
    signing key in SIGNER."""
    with app.app_context():
        signer = settings.of(app).keys.ring_source.ring(clock.now).signer(clock.now)
    public = signer.public
    other = ec.generate_private_key(ec.SECP256R1())
    SIGNER.update(kid=signer.kid, private=signer.private, other=other, jwk=json.dumps(
        signing.public_jwk(public)).encode(), pem=public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    ada, bob = browser(app), browser(app)
    signed_up(ada, "ada@example.com")
    signed_up(bob, "bob@example.com")
    me = ada.get("/api/me").get_json()
    claims = {"iss": ISSUER, "aud": ISSUER, "sub": me["user_id"], "sid": me["session_id"],
              "gen": 0, "iat": int(clock.now), "exp": int(clock.now) + 300, "jti": "0" * 32}
    return claims, bob.get("/api/me").get_json()


@pytest.fixture
def no_outbound(monkeypatch):
    """Fail on any attempt to open a connection from Python (jku/x5u fetches would)."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"outbound connection attempted: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


def present(app, token: str, path: str):
    """A fresh browser presenting only the access cookie."""
    client = app.test_client(use_cookies=False)
    return client.get(path, headers={"Cookie": f"{ACCESS_COOKIE}={token}"})


def test_a_genuine_forged_token_authenticates(app, genuine):
    """The control: the harness builds tokens the app accepts, so the refusals below mean it."""
    claims, _ = genuine
    response = present(app, forge(HEADER, claims), "/api/me")
    assert response.status_code == 200
    assert response.get_json()["email"] == "ada@example.com"


@pytest.mark.parametrize("name", sorted(attacks(
    {"iss": "i", "aud": "a", "sub": "s", "sid": "d", "iat": 1, "exp": 2, "jti": "j"},
    {"user_id": "u", "session_id": "v"})))
def test_attack_is_refused(app, genuine, no_outbound, name):
    claims, victim = genuine
    token = attacks(claims, victim)[name]
    api = present(app, token, "/api/me")
    assert api.status_code == 401, name
    assert api.get_json()["error"] == "not_authenticated"
    page = present(app, token, "/account")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login"), name
    for body in (api.get_data(as_text=True), page.get_data(as_text=True)):
        assert "ada@example.com" not in body and claims["sub"] not in body
        assert victim["user_id"] not in body and "bob@example.com" not in body
    assert no_outbound == []


@pytest.mark.parametrize("where", ["query", "authorization"])
def test_access_token_is_accepted_from_its_cookie_only(app, genuine, where):
    claims, _ = genuine
    token = forge(HEADER, claims)
    client = app.test_client()
    if where == "query":
        response = client.get(f"/api/me?access_token={token}&jwt={token}")
    else:
        response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize("value", [
    '"quoted"', "semi;colon", "ünïcödé", "' OR 1=1 --", "x" * 8192, "%00", "\\u0000", "a,b",
])
@pytest.mark.parametrize("name", ["__Host-access", "__Host-session", "__Host-flask"])
def test_malformed_cookies_are_treated_as_signed_out(app, name, value):
    client = app.test_client(use_cookies=False)
    for path in ("/api/me", "/account", "/"):
        response = client.get(path, headers={"Cookie": f"{name}={value}"})
        assert response.status_code in (200, 302, 401), (path, response.status_code)


def test_revoked_session_refuses_a_re_encoded_token(app, genuine):
    """Revocation is keyed on ``sid``, not on the token's bytes: padding tricks don't help."""
    claims, _ = genuine
    token = forge(HEADER, claims)
    client = browser(app)
    client.set_cookie(ACCESS_COOKIE, token)
    assert client.get("/api/me").status_code == 200
    from app.models import LoginSession
    from app.sessions import rules, store
    session = LoginSession.get(LoginSession.public_id == claims["sid"])
    store.revoke(claims["sid"], user_id=session.user_id, reason=rules.REVOKED,
                    now=claims["iat"])
    for variant in (token, token + "=", forge(HEADER, {**claims, "jti": "1" * 32})):
        assert present(app, variant, "/api/me").status_code == 401


def test_pyjwt_is_called_with_one_algorithm_only():
    """The allow-list is hard-coded to exactly ES256."""
    assert tokens.ALGORITHM == "ES256"
    keys = fixed_keys(SECRET)
    signer = keys.ring_source.ring(0).signer(0)
    with pytest.raises(tokens.InvalidAccessToken):
        tokens.decode_access(keys, forge({"alg": "HS512", "typ": "at+jwt", "kid": signer.kid},
                                         {"sub": "x"}, key=OLD_KEY, digest=hashlib.sha512),
                             issuer=ISSUER, now=0)


@pytest.mark.parametrize("claim, value", [
    ("sid", "\x00"), ("sid", "ab\x00cd"), ("sub", "\x00"), ("sid", "é" * 22), ("sid", ""),
])
def test_a_validly_signed_token_with_a_malformed_id_is_signed_out_not_an_error(
        app, genuine, claim, value):
    """Signed with the real key, yet holding an id no session has: a NUL once reached
    PostgreSQL's text and answered 500. Ids are checked before any lookup, on both engines."""
    claims, _ = genuine
    token = forge(HEADER, {**claims, claim: claims[claim][:3] + value})
    api = present(app, token, "/api/me")
    assert api.status_code == 401 and api.get_json()["error"] == "not_authenticated"
    assert present(app, token, "/account").status_code == 302
