"""Device-bound sessions (DBSC): the proof checks against hostile input, and the offer,
registration and refresh over HTTP(S) as a browser drives them (real keys, Flask's client).
The whole exchange with a real Chromium is tests/e2e/test_dbsc.py."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from support import (
    PASSWORD,
    SECRET,
    Cookies,
    auth_cookies_set,
    browser,
    login,
    only_session,
    submit,
)

from app import keyproofs
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.keyproofs import InvalidProof, read_proof
from app.models import KeyChallenge, LoginSession, SecurityEvent, SessionKey

HTTPS = "https://localhost"
EXPIRED = 306  # past the default 300-second access token and its 5-second leeway


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def jwk_of(key) -> dict:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(public, as_dict=True)
    return ECAlgorithm.to_jwk(public, as_dict=True)


def proof(key, challenge: str, *, alg: str = "ES256", jwk: dict | None = None,
          typ: str = "dbsc+jwt", with_jwk: bool = True) -> str:
    """What Chromium sends: typ dbsc+jwt, the public jwk in the header (at registration), the
    challenge as jti."""
    headers = {"typ": typ}
    if with_jwk:
        headers["jwk"] = jwk if jwk is not None else jwk_of(key)
    return jwt.encode({"jti": challenge}, key, algorithm=alg, headers=headers)


def unsigned(header: dict, payload: dict, signature: bytes = b"") -> str:
    part = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    return ".".join([part(json.dumps(header).encode()), part(json.dumps(payload).encode()),
                     part(signature)])


# --- the proof checks, against hostile input ---------------------------------------------


def test_a_registration_proof_names_its_challenge_and_key():
    key = ec_key()
    read = read_proof(proof(key, "c1"))
    assert read.challenge == "c1"
    assert read.jwk == {k: v for k, v in jwk_of(key).items() if k in ("kty", "crv", "x", "y")}
    assert read.thumbprint == keyproofs.thumbprint(read.jwk) and len(read.thumbprint) == 43


def test_an_rs256_proof_is_accepted_too():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert read_proof(proof(key, "c1", alg="RS256")).challenge == "c1"


def test_the_thumbprint_is_rfc_7638():
    # RFC 7638, 3.1: the example RSA key and its thumbprint.
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
         "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
         "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWh"
         "AI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
    thumb = keyproofs.thumbprint({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256"})
    assert thumb == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_a_proof_signed_by_another_key_than_its_header_names_is_refused():
    with pytest.raises(InvalidProof):
        read_proof(proof(ec_key(), "c1", jwk=jwk_of(ec_key())))


def test_a_refresh_proof_by_another_key_than_the_stored_one_is_refused():
    stored = read_proof(proof(ec_key(), "c0")).jwk
    thief = ec_key()
    # Its own key in the header does not help: a refresh verifies with the stored key.
    with pytest.raises(InvalidProof):
        read_proof(proof(thief, "c1"), stored)
    with pytest.raises(InvalidProof):
        read_proof(proof(thief, "c1", with_jwk=False), stored)


@pytest.mark.parametrize("alg", ["none", "HS256", "ES384", "PS256", "EdDSA", None])
def test_an_algorithm_other_than_es256_or_rs256_is_refused(alg):
    key = ec_key()
    jwk = jwk_of(key)
    header = {"typ": "dbsc+jwt", "jwk": jwk, **({"alg": alg} if alg else {})}
    with pytest.raises(InvalidProof):
        read_proof(unsigned(header, {"jti": "c1"}))
    with pytest.raises(InvalidProof):  # and never at a refresh either
        read_proof(unsigned(header, {"jti": "c1"}), read_proof(proof(key, "c0")).jwk)


def test_an_hmac_keyed_with_the_public_key_is_refused():
    """Key confusion: an HS256 "signature" made with the public key's bytes as the secret."""
    key = ec_key()
    jwk = jwk_of(key)
    forged = jwt.encode({"jti": "c1"}, json.dumps(jwk).encode() * 2, algorithm="HS256",
                        headers={"typ": "dbsc+jwt", "jwk": jwk})
    with pytest.raises(InvalidProof):
        read_proof(forged)
    forged_es = unsigned({"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwk}, {"jti": "c1"},
                         b"\0" * 64)
    with pytest.raises(InvalidProof):
        read_proof(forged_es)


def test_a_jwk_with_a_private_part_is_refused():
    key = ec_key()
    private = ECAlgorithm.to_jwk(key, as_dict=True)
    assert "d" in private
    with pytest.raises(InvalidProof, match="private"):
        read_proof(proof(key, "c1", jwk=private))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidProof, match="private"):
        read_proof(proof(rsa_key, "c1", alg="RS256",
                         jwk=RSAAlgorithm.to_jwk(rsa_key, as_dict=True)))


@pytest.mark.parametrize("token", [
    "", "not.a.jwt", "a" * (keyproofs.MAX_PROOF_LENGTH + 1),
    unsigned({"alg": "ES256", "typ": "dbsc+jwt", "jwk": "a string"}, {"jti": "c1"}),
    unsigned({"alg": "ES256", "typ": "dbsc+jwt", "jwk": {"kty": "EC", "crv": "P-384"}}, {}),
    unsigned({"alg": "ES256", "typ": "dbsc+jwt", "jwk": {"kty": "RSA", "n": "AQAB",
                                                         "e": "AQAB"}}, {"jti": "c1"}),
    unsigned({"alg": "RS256", "typ": "dbsc+jwt", "jwk": {"kty": "RSA", "n": "AQAB",
                                                         "e": "AQAB"}}, {"jti": "c1"}),
])
def test_malformed_proofs_are_refused(token):
    with pytest.raises(InvalidProof):
        read_proof(token)


def test_the_type_and_the_challenge_are_required():
    key = ec_key()
    with pytest.raises(InvalidProof):
        read_proof(proof(key, "c1", typ="JWT"))
    no_jti = jwt.encode({"sub": "x"}, key, algorithm="ES256",
                        headers={"typ": "dbsc+jwt", "jwk": jwk_of(key)})
    with pytest.raises(InvalidProof):
        read_proof(no_jti)
    number_jti = jwt.encode({"jti": 5}, key, algorithm="ES256",
                            headers={"typ": "dbsc+jwt", "jwk": jwk_of(key)})
    with pytest.raises(InvalidProof):
        read_proof(number_jti)


# --- the exchange, as a DBSC browser drives it ---------------------------------------------


def offer_of(response) -> str:
    """The challenge of a registration offer."""
    header = response.headers.get(keyproofs.REGISTRATION_HEADER)
    assert header is not None, "no registration offer"
    assert header.startswith('(ES256 RS256);path="/dbsc/register";challenge="')
    return header.rsplit('challenge="', 1)[1].rstrip('"')


def sign_up_over_https(client, email: str = "ada@example.com"):
    submit(client, "/register", {"email": email, "password": PASSWORD}, base_url=HTTPS)
    response = login(client, email, base_url=HTTPS)
    assert response.status_code == 302
    return response


def registered(client, key, email: str = "ada@example.com"):
    challenge = offer_of(sign_up_over_https(client, email))
    response = client.post(keyproofs.REGISTER_PATH, base_url=HTTPS,
                           headers={keyproofs.PROOF_HEADER: proof(key, challenge)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def refresh(client, *, session_id: str, key=None, challenge: str | None = None):
    headers = {keyproofs.SESSION_ID_HEADER: session_id}
    if key is not None:
        headers[keyproofs.PROOF_HEADER] = proof(key, challenge, with_jwk=False)
    return client.post(keyproofs.REFRESH_PATH, base_url=HTTPS, headers=headers)


def challenge_of(response, session_id: str) -> str:
    assert response.status_code == 403
    value = response.headers[keyproofs.CHALLENGE_HEADER]
    challenge, named = value.split(";id=")
    assert named == f'"{session_id}"'
    return challenge.strip('"')


def test_only_a_sign_in_over_https_offers_registration(make_app):
    app = make_app()
    client = browser(app)
    offer_of(sign_up_over_https(client))
    plain = browser(app)
    login(plain)
    assert keyproofs.REGISTRATION_HEADER not in login(plain).headers
    off = browser(make_app(GATEHOUSE_DEVICE_BOUND_SESSIONS="off"))
    assert keyproofs.REGISTRATION_HEADER not in login(off, base_url=HTTPS).headers


def test_registration_binds_the_session_and_names_the_access_cookie(client):
    key = ec_key()
    answer = registered(client, key).get_json()
    session = only_session()
    assert session.key_thumbprint == read_proof(proof(key, "x")).thumbprint
    assert answer == {
        "session_identifier": session.public_id, "refresh_url": "/dbsc/refresh",
        "scope": {"origin": HTTPS, "include_site": False},
        "credentials": [{"type": "cookie", "name": ACCESS_COOKIE,
                         "attributes": "Path=/; Secure; HttpOnly; SameSite=Lax"}]}
    # Exactly the attributes the cookie is set with.
    (set_access,) = [h for h in auth_cookies_set(login(browser(client.application),
                                                        base_url=HTTPS))
                     if h.startswith(ACCESS_COOKIE)]
    for attribute in answer["credentials"][0]["attributes"].split("; "):
        assert attribute in set_access.split("; ")
    assert SecurityEvent.select().where(SecurityEvent.kind == "key_bound").count() == 1


def test_a_registration_challenge_is_single_use_and_the_sessions_own(make_app):
    app = make_app()
    ada, bob = browser(app), browser(app)
    challenge = offer_of(sign_up_over_https(ada))
    bobs = offer_of(sign_up_over_https(bob, "bob@example.com"))
    key = ec_key()
    # Another session's challenge: refused, and Bob's stays unanswered.
    assert ada.post(keyproofs.REGISTER_PATH, base_url=HTTPS, headers={
        keyproofs.PROOF_HEADER: proof(key, bobs)}).status_code == 400
    assert ada.post(keyproofs.REGISTER_PATH, base_url=HTTPS, headers={
        keyproofs.PROOF_HEADER: proof(key, challenge)}).status_code == 200
    # Replayed: refused, even by the very key it bound.
    assert ada.post(keyproofs.REGISTER_PATH, base_url=HTTPS, headers={
        keyproofs.PROOF_HEADER: proof(key, challenge)}).status_code == 400
    assert LoginSession.select().where(LoginSession.key_thumbprint != "").count() == 1
    assert KeyChallenge.select().count() == 1  # Bob's


def test_an_expired_challenge_is_refused(client, clock):
    challenge = offer_of(sign_up_over_https(client))
    clock.advance(301)  # the challenge's 300 s are over; the access token is still valid
    assert client.get("/api/me", base_url=HTTPS).status_code == 200
    assert client.post(keyproofs.REGISTER_PATH, base_url=HTTPS, headers={
        keyproofs.PROOF_HEADER: proof(ec_key(), challenge)}).status_code == 400
    assert not LoginSession.select().where(LoginSession.key_thumbprint != "").exists()


def test_registration_without_a_session_or_with_a_bad_proof_is_refused(client):
    challenge = offer_of(sign_up_over_https(client))
    assert browser(client.application).post(keyproofs.REGISTER_PATH, base_url=HTTPS, headers={
        keyproofs.PROOF_HEADER: proof(ec_key(), challenge)}).status_code == 401
    assert client.post(keyproofs.REGISTER_PATH, base_url=HTTPS, headers={
        keyproofs.PROOF_HEADER: unsigned({"alg": "none", "typ": "dbsc+jwt"},
                                         {"jti": challenge})}).status_code == 400
    assert client.post(keyproofs.REGISTER_PATH, base_url=HTTPS).status_code == 400
    assert only_session().key_thumbprint == ""


def test_a_refresh_rotates_only_against_the_stored_key_over_a_fresh_challenge(client, clock):
    key = ec_key()
    registered(client, key)
    session = only_session()
    clock.advance(EXPIRED)  # the access token has expired
    first = challenge_of(refresh(client, session_id=session.public_id), session.public_id)
    # Another key over the right challenge: asked again, nothing rotated.
    again = refresh(client, session_id=session.public_id, key=ec_key(), challenge=first)
    assert again.status_code == 403 and only_session().generation == 0
    handle = Cookies.of(client).session
    answer = refresh(client, session_id=session.public_id, key=key, challenge=first)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["session_identifier"] == session.public_id
    assert {h.split("=", 1)[0] for h in auth_cookies_set(answer)} == {ACCESS_COOKIE,
                                                                     SESSION_COOKIE}
    assert Cookies.of(client).session != handle and only_session().generation == 1
    assert client.get("/api/me", base_url=HTTPS).status_code == 200
    # The challenge is spent: replayed, even by the right key with the newest cookies, it
    # is asked again.
    clock.advance(EXPIRED)
    replayed = refresh(client, session_id=session.public_id, key=key, challenge=first)
    assert replayed.status_code == 403 and only_session().generation == 1


def test_parallel_refreshes_and_a_lost_response_converge(client, clock):
    """Two refreshes with the same cookie, each over its own challenge, get the same
    successor; so does a retry whose first answer never arrived."""
    key = ec_key()
    registered(client, key)
    public_id = only_session().public_id
    clock.advance(EXPIRED)
    cookies = Cookies.of(client)
    one = challenge_of(refresh(client, session_id=public_id), public_id)
    two = challenge_of(refresh(client, session_id=public_id), public_id)
    first = refresh(client, session_id=public_id, key=key, challenge=one)
    successor = Cookies.of(client)
    cookies.put(client)  # the second request was sent with the same cookies
    second = refresh(client, session_id=public_id, key=key, challenge=two)
    assert first.status_code == second.status_code == 200
    assert Cookies.of(client).session == successor.session
    clock.advance(60)  # past the grace window: the first answer was lost, the value unproven
    cookies.put(client)
    three = challenge_of(refresh(client, session_id=public_id), public_id)
    assert refresh(client, session_id=public_id, key=key, challenge=three).status_code == 200
    assert Cookies.of(client).session == successor.session
    assert only_session().ended_at is None and only_session().generation == 1


def test_a_refresh_acts_only_on_the_session_its_cookies_name(make_app, clock):
    app = make_app()
    ada, bob = browser(app), browser(app)
    ada_key, bob_key = ec_key(), ec_key()
    registered(ada, ada_key)
    registered(bob, bob_key, "bob@example.com")
    bobs = LoginSession.get(LoginSession.key_thumbprint == read_proof(
        proof(bob_key, "x")).thumbprint)
    clock.advance(EXPIRED)
    # Ada's cookies, Bob's session id: not the session these cookies name.
    answer = refresh(ada, session_id=bobs.public_id)
    assert answer.status_code == 200
    assert answer.get_json() == {"session_identifier": bobs.public_id, "continue": False}
    assert not [h for h in auth_cookies_set(answer)
                if h.startswith((ACCESS_COOKIE, SESSION_COOKIE))]
    assert not KeyChallenge.select().exists()
    assert LoginSession.select().where(LoginSession.ended_at.is_null()).count() == 2


def test_an_ended_session_tells_the_browser_to_stop(client, clock):
    key = ec_key()
    registered(client, key)
    public_id = only_session().public_id
    challenge = challenge_of(refresh(client, session_id=public_id), public_id)
    cookies = Cookies.of(client)
    submit(client, "/logout", {}, form_page="/account", base_url=HTTPS)
    cookies.put(client)
    answer = refresh(client, session_id=public_id, key=key, challenge=challenge)
    assert answer.get_json() == {"session_identifier": public_id, "continue": False}
    cleared = [h for h in auth_cookies_set(answer) if h.startswith((ACCESS_COOKIE, SESSION_COOKIE))]
    assert len(cleared) == 2 and all("Max-Age=0" in h for h in cleared)


def test_copied_cookies_of_a_bound_session_are_refused_without_ending_it(client, clock):
    key = ec_key()
    registered(client, key)
    session = only_session()
    copy = Cookies.of(client)
    thief = browser(client.application)
    thief.environ_base["REMOTE_ADDR"] = "198.51.100.23"
    copy.put(thief)
    assert thief.get("/api/me", base_url=HTTPS).status_code == 200  # until its token expires
    clock.advance(EXPIRED)
    refused = thief.get("/api/me", base_url=HTTPS)
    assert refused.status_code == 401 and refused.get_json()["reason"] == "key_missing"
    page = thief.get("/account", base_url=HTTPS)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    # Nothing is wiped: the owner's browser is fine.
    assert not [h for h in auth_cookies_set(refused)
                if h.startswith((ACCESS_COOKIE, SESSION_COOKIE))]
    assert only_session().ended_at is None and only_session().generation == 0
    events = SecurityEvent.select().where(SecurityEvent.kind == "key_missing")
    assert {e.ip_address for e in events} == {"198.51.100.23"}
    # The owner's browser refreshes with its key, and reads it on the timeline.
    challenge = challenge_of(refresh(client, session_id=session.public_id), session.public_id)
    assert refresh(client, session_id=session.public_id, key=key,
                   challenge=challenge).status_code == 200
    text = client.get(f"/sessions/{session.public_id}", base_url=HTTPS).get_data(as_text=True)
    assert "Refused a copy without this device&#39;s key, from 198.51.100.23" in text
    assert "Bound to this device&#39;s key" in text
    sessions = client.get("/sessions", base_url=HTTPS).get_data(as_text=True)
    assert 'data-field="bound"' in sessions


def test_an_older_access_token_of_a_bound_session_is_refused_not_reuse(client, clock):
    """Only the key's holder rotates a bound session: an access token two generations old is
    a copy, refused without ending the session (for an unbound one it is reuse)."""
    key = ec_key()
    registered(client, key)
    public_id = only_session().public_id
    copy = Cookies.of(client)
    for _ in range(2):
        challenge = challenge_of(refresh(client, session_id=public_id), public_id)
        assert refresh(client, session_id=public_id, key=key,
                       challenge=challenge).status_code == 200
    thief = browser(client.application)
    copy.put(thief)
    thief.environ_base["REMOTE_ADDR"] = "198.51.100.23"
    answer = thief.get("/api/me", base_url=HTTPS)
    assert answer.status_code == 401 and answer.get_json()["reason"] == "key_missing"
    assert only_session().ended_at is None
    (event,) = SecurityEvent.select().where(SecurityEvent.kind == "key_missing")
    assert event.ip_address == "198.51.100.23"
    assert client.get("/api/me", base_url=HTTPS).status_code == 200


def test_a_session_never_bound_keeps_renewing_on_its_cookie(client, clock):
    sign_up_over_https(client)  # offered, never registered: a browser without DBSC
    clock.advance(EXPIRED)
    assert client.get("/api/me", base_url=HTTPS).status_code == 200
    assert only_session().generation == 1
    public_id = only_session().public_id
    assert refresh(client, session_id=public_id).get_json() == {
        "session_identifier": public_id, "continue": False}


def test_a_bound_session_keeps_its_key_and_a_second_one_is_not_kept(client):
    """Registering again, with a challenge from a refresh, cannot swap the key for another."""
    key = ec_key()
    registered(client, key)
    session = only_session()
    challenge = challenge_of(refresh(client, session_id=session.public_id), session.public_id)
    other = ec_key()
    answer = client.post(keyproofs.REGISTER_PATH, base_url=HTTPS,
                         headers={keyproofs.PROOF_HEADER: proof(other, challenge)})
    assert answer.status_code == 409
    assert only_session().key_thumbprint == read_proof(proof(key, "x")).thumbprint
    assert SessionKey.select().count() == 1


def test_prune_deletes_expired_challenges(app, clock):
    client = browser(app)
    sign_up_over_https(client)  # offered, never answered
    sign_up_over_https(browser(app), "bob@example.com")
    assert KeyChallenge.select().count() == 2
    clock.advance(301)
    assert "2 expired key challenges" in app.test_cli_runner().invoke(args=["prune"]).output
    assert not KeyChallenge.select().exists()


def test_refreshes_racing_in_threads_all_get_the_same_successor(client, clock):
    """Eight tabs' refreshes at once, each over its own challenge: one rotation, one successor
    for all, nobody signed out. A proof whose challenge is refused is answered 403 with another
    one, which a browser signs again."""
    from concurrent.futures import ThreadPoolExecutor

    key = ec_key()
    registered(client, key)
    public_id = only_session().public_id
    clock.advance(EXPIRED)
    cookies = Cookies.of(client)
    tabs = [browser(client.application) for _ in range(8)]
    challenges = []
    for tab in tabs:
        cookies.put(tab)
        challenges.append(challenge_of(refresh(tab, session_id=public_id), public_id))

    def renew(pair):
        tab, challenge = pair
        answer = refresh(tab, session_id=public_id, key=key, challenge=challenge)
        if answer.status_code == 403:  # asked again, as the browser would be
            answer = refresh(tab, session_id=public_id, key=key,
                             challenge=challenge_of(answer, public_id))
        return answer.status_code, Cookies.of(tab).session

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(renew, zip(tabs, challenges, strict=True)))
    assert {status for status, _ in results} == {200}
    assert len({handle for _, handle in results}) == 1
    assert only_session().ended_at is None and only_session().generation == 1


def test_a_bound_session_renews_after_the_secret_key_is_replaced(make_app, clock):
    """A value issued under the old SECRET_KEY (kept as a fallback) renews at the refresh
    endpoint like any other: replacing the key signs no bound browser out."""
    ada = browser(make_app())
    key = ec_key()
    registered(ada, key)
    session = only_session()
    moved = browser(make_app(SECRET_KEY="a-new-secret-key-for-the-replacement-0123456789",
                             GATEHOUSE_SECRET_KEY_FALLBACKS=SECRET))
    Cookies.of(ada).put(moved)
    clock.advance(EXPIRED)
    challenge = challenge_of(refresh(moved, session_id=session.public_id), session.public_id)
    answer = refresh(moved, session_id=session.public_id, key=key, challenge=challenge)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["session_identifier"] == session.public_id
    assert only_session().ended_at is None and only_session().generation == 1
