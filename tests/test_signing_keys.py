"""The access tokens' signing keys: ES256 with kid, published as a JWK Set, stored encrypted,
rotated ahead of use, and replaced (keys or SECRET_KEY itself) without signing anyone out."""

import json

import jwt
import pytest
from support import SECRET, Cookies, browser, signed_up

from app import keystore, settings, signing
from app.carriers import ACCESS_COOKIE
from app.models import LoginSession, StoredKey
from app.settings import ISSUER

NEW_SECRET = "a-new-secret-key-for-the-replacement-0123456789"


def kid_of(client) -> str:
    return jwt.get_unverified_header(client.get_cookie(ACCESS_COOKIE).value)["kid"]


def published(client) -> list[str]:
    return [key["kid"] for key in client.get("/.well-known/jwks.json").get_json()["keys"]]


def keys_cli(app, *args):
    result = app.test_cli_runner().invoke(args=["keys", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_rfc7638_thumbprint_of_the_rfcs_own_example():
    """RFC 7638 section 3.1: the RSA key and the thumbprint it gives."""
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
           "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
                "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v"
                "-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08"
                "qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8a"
                "wapJzKnqDKgw"}
    assert signing.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    with pytest.raises(ValueError):
        signing.thumbprint({"kty": "oct", "k": "c2VjcmV0"})


def test_the_jwks_publishes_the_signing_key_and_an_api_verifies_with_it(ada):
    response = ada.get("/.well-known/jwks.json")
    assert response.status_code == 200 and "max-age=300" in response.headers["Cache-Control"]
    (key,) = response.get_json()["keys"]
    assert key["kid"] == kid_of(ada) and (key["alg"], key["use"], key["crv"]) == (
        "ES256", "sig", "P-256")
    assert "d" not in key and key["kid"] == signing.thumbprint(key)
    claims = jwt.decode(ada.get_cookie(ACCESS_COOKIE).value, jwt.PyJWK(key).key,
                        algorithms=["ES256"], audience=ISSUER,
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["sid"] == ada.get("/api/me").get_json()["session_id"]


def test_the_private_key_is_stored_encrypted_under_the_secret_key(ada, app):
    (row,) = StoredKey.select()
    assert "d" not in json.loads(row.public_jwk)
    with app.app_context():
        private = settings.current().keys.ring_source.ring(0).keys[0].private
    number = private.private_numbers().private_value.to_bytes(32, "big")
    assert signing.b64url(number) not in row.encrypted_private
    with pytest.raises(signing.UndecryptableKey):  # a copy of the database alone opens nothing
        signing.decrypt_private(row.encrypted_private, row.kid, ["another secret " * 3])
    opened = signing.decrypt_private(row.encrypted_private, row.kid, ["x" * 40, SECRET])
    assert opened.private_numbers() == private.private_numbers()


def test_two_workers_making_the_first_key_at_once_make_one(app, clock):
    with app.app_context():
        StoredKey.delete().execute()
        keystore.create_key(SECRET, clock.now, 0.0)
        keystore.create_key(SECRET, clock.now, 0.0)
        assert StoredKey.select().count() == 1
        keystore.StoredKey.delete().execute()
        keystore.StoredRing([SECRET], 300).ring(clock.now)
        keystore.StoredRing([SECRET], 300).ring(clock.now)
        assert StoredKey.select().count() == 1


def test_a_rotated_key_is_published_first_signs_later_and_nobody_is_signed_out(make_app, clock):
    app = make_app(GATEHOUSE_ACCESS_TOKEN_TTL=300, GATEHOUSE_KEY_PUBLISH_AHEAD=600)
    ada = browser(app)
    signed_up(ada)
    first = kid_of(ada)
    output = keys_cli(app, "rotate")
    assert "published now, signing from" in output
    second = StoredKey.get(StoredKey.kid != first).kid
    assert set(published(ada)) == {first, second}  # published at once
    assert "next" in keys_cli(app, "list")
    clock.advance(310)  # a new access token, still from the first key
    assert ada.get("/api/me").status_code == 200 and kid_of(ada) == first
    clock.advance(310)  # the new key signs now; the first one's tokens may still be live
    assert ada.get("/api/me").status_code == 200 and kid_of(ada) == second
    assert set(published(ada)) == {first, second}
    states = keys_cli(app, "list")
    assert f"{first}  verifying" in states and f"{second}  signing" in states
    clock.advance(290)  # every token the first key signed has expired: retired
    assert published(ada) == [second]
    assert f"{first}  retired" in keys_cli(app, "list")
    assert ada.get("/api/me").status_code == 200
    assert "Retired 1 keys" in keys_cli(app, "rotate")
    assert StoredKey.get_or_none(StoredKey.kid == first) is None
    assert LoginSession.get().ended_at is None


def test_a_token_signed_by_a_key_another_worker_just_made_is_verified(make_app, clock):
    """Worker A rotates with no publish-ahead; worker B, whose ring is fresh, still verifies
    A's tokens: an unknown kid reads the keys again."""
    a, b = make_app(GATEHOUSE_KEY_PUBLISH_AHEAD=0), make_app()
    ada = browser(a)
    signed_up(ada)
    with b.app_context():
        settings.current().keys.ring_source.ring(clock.now)  # B knows only the first key
    keys_cli(a, "rotate")
    clock.advance(310)
    assert ada.get("/api/me").status_code == 200
    there = browser(b)
    Cookies.of(ada).put(there)
    clock.advance(2)
    assert there.get("/api/me").status_code == 200
    assert not there.get_cookie(ACCESS_COOKIE) or kid_of(there) == kid_of(ada)


def test_replacing_the_secret_key_with_the_old_one_as_fallback_signs_nobody_out(make_app, clock):
    old_app = make_app()
    ada = browser(old_app)
    signed_up(ada)
    held = Cookies.of(ada)
    new_app = make_app(SECRET_KEY=NEW_SECRET, GATEHOUSE_SECRET_KEY_FALLBACKS=SECRET)
    moved = browser(new_app)
    held.put(moved)
    assert moved.get("/api/me").status_code == 200  # the access token: same stored key
    clock.advance(310)
    assert moved.get("/api/me").status_code == 200  # the session value: the old secret's
    assert Cookies.of(moved).session != held.session
    assert moved.get("/account").status_code == 200  # Flask's own cookie, too
    keys_cli(new_app, "rotate")  # re-encrypts under the new secret
    after = make_app(SECRET_KEY=NEW_SECRET)  # the old secret gone entirely
    last = browser(after)
    Cookies.of(moved).put(last)
    assert last.get("/api/me").status_code == 200
    clock.advance(310)
    assert last.get("/api/me").status_code == 200
    assert LoginSession.get().ended_at is None


def test_a_secret_key_that_opens_no_stored_key_makes_its_own_and_still_verifies(make_app,
                                                                                clock):
    """Without the fallback the stored keys stay closed: the app makes a key of its own and
    signs with it, while tokens of the closed keys still verify (their public halves)."""
    old_app = make_app()
    ada = browser(old_app)
    signed_up(ada)
    other = make_app(SECRET_KEY=NEW_SECRET)
    moved = browser(other)
    Cookies.of(ada).put(moved)
    assert moved.get("/api/me").status_code == 200
    with other.app_context():
        ring = settings.current().keys.ring_source.ring(clock.now)
    assert [key.private is None for key in ring.keys] == [True, False]
    assert ring.signer(clock.now) is ring.keys[1]
