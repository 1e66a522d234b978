"""Sign-in sets exactly the specified cookies, and no credential reaches a body."""

import jwt
from support import PASSWORD, Cookies, browser, cookie, login, page, register, submit

from app import tokens
from app.carriers import ACCESS_COOKIE, DEVICE_COOKIE, SESSION_COOKIE
from app.settings import ISSUER

COOKIE_NAMES = {ACCESS_COOKIE, SESSION_COOKIE, DEVICE_COOKIE, "__Host-flask"}


def set_cookie_headers(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")[1:]]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "") for p in parts}


def test_sign_in_sets_exactly_the_specified_cookies(client, app):
    register(client)
    response = login(client)
    assert response.status_code == 302
    headers = set_cookie_headers(response)
    assert set(headers) == COOKIE_NAMES
    for name, header in headers.items():
        attrs = attributes(header)
        assert "secure" in attrs and "httponly" in attrs, name
        assert attrs["samesite"] == "Lax" and attrs["path"] == "/", name
        assert "domain" not in attrs, name
    access_age = int(attributes(headers[ACCESS_COOKIE])["max-age"])
    session_age = int(attributes(headers[SESSION_COOKIE])["max-age"])
    assert 0 < access_age <= app.config["GATEHOUSE_ACCESS_TOKEN_TTL"]
    assert 0 < session_age <= app.config["GATEHOUSE_SESSION_MAX_AGE"]
    assert int(attributes(headers[DEVICE_COOKIE])["max-age"]) == 365 * 24 * 3600


def test_access_token_claims_and_header(ada, app, clock):
    token = cookie(ada, ACCESS_COOKIE)
    header = jwt.get_unverified_header(token)
    published = {key["kid"]: key for key in ada.get("/.well-known/jwks.json").get_json()["keys"]}
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": header["kid"]}
    assert header["kid"] in published  # an API behind Gatehouse verifies it with the JWKS:
    jwt.decode(token, jwt.PyJWK(published[header["kid"]]).key, algorithms=["ES256"],
               audience=ISSUER, options={"verify_exp": False, "verify_iat": False})
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"iss", "aud", "sub", "sid", "gen", "iat", "exp", "jti"}
    assert claims["exp"] - claims["iat"] == app.config["GATEHOUSE_ACCESS_TOKEN_TTL"]
    # Nothing of the person's address: every claim is a constant, a random public id, a time
    # or a count. (A bare "ada" substring test failed now and then: random hex ids contain it.)
    me = ada.get("/api/me").get_json()
    assert (claims["iss"], claims["aud"]) == (ISSUER, ISSUER)
    assert (claims["sub"], claims["sid"]) == (me["user_id"], me["session_id"])
    assert me["email"] not in str(claims) and not any("@" in str(v) for v in claims.values())
    assert all(isinstance(claims[k], int) for k in ("gen", "iat", "exp"))
    assert len(token) < 1024


def test_refresh_token_appears_in_no_cookie_and_no_body(client, app):
    register(client)
    bodies = [login(client, follow_redirects=True).get_data(as_text=True)]
    bodies += [client.get(p).get_data(as_text=True)
               for p in ("/account", "/sessions", "/api/me", "/api/sessions")]
    handle = cookie(client, SESSION_COOKIE)
    keys = tokens.Keys.derive(app.config["SECRET_KEY"])
    refresh = tokens.refresh_token(keys, handle)
    jar = [cookie(client, name) for name in (ACCESS_COOKIE, SESSION_COOKIE, "__Host-flask")]
    assert refresh not in jar
    assert not any(refresh in body or handle in body for body in bodies)
    assert not any(cookie(client, ACCESS_COOKIE) in body for body in bodies)


def test_nothing_the_browser_holds_is_accepted_as_a_refresh_token(ada, app):
    """Presenting the refresh token itself (derived from the handle) as the session cookie, or
    the handle where a refresh token is looked up, finds nothing."""
    from app.models import RefreshToken

    handle = cookie(ada, SESSION_COOKIE)
    keys = tokens.Keys.derive(app.config["SECRET_KEY"])
    assert RefreshToken.get_or_none(RefreshToken.token_hash == tokens.token_hash(handle)) is None
    thief = browser(app)
    thief.set_cookie(SESSION_COOKIE, tokens.refresh_token(keys, handle))
    assert thief.get("/api/me").status_code == 401
    assert ada.get("/api/me").status_code == 200


def test_login_then_account_shows_the_email(ada):
    response = ada.get("/account")
    assert response.status_code == 200
    assert page(response).find(attrs={"data-test": "email"}).text == "ada@example.com"


def test_wrong_password_and_unknown_email_get_the_same_answer(client):
    register(client)
    wrong = login(client, password="not the right password at all")
    unknown = login(client, email="nobody@example.com", password=PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    message = lambda r: page(r).select_one(".error").text  # noqa: E731
    assert message(wrong) == message(unknown)
    assert cookie(client, ACCESS_COOKIE) is None


def test_sign_out_ends_the_session_and_clears_cookies(ada):
    before = Cookies.of(ada)
    response = submit(ada, "/logout", {}, form_page="/account")
    assert response.status_code == 302
    cleared = set_cookie_headers(response)
    assert {ACCESS_COOKIE, SESSION_COOKIE} <= set(cleared)
    assert all(attributes(cleared[n]).get("max-age") == "0"
               for n in (ACCESS_COOKIE, SESSION_COOKIE))
    # The old, still unexpired access token no longer works: revocation is immediate.
    other = browser(ada.application)
    before.put(other)
    assert other.get("/api/me").status_code == 401
