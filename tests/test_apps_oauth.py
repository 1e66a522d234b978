"""Apps sign in with OAuth 2.0 (code + PKCE S256, RFC 8252 redirects), hold a bearer token and
a refresh token, and their sessions follow the browser's rotation rules: one copy of them."""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from support import PASSWORD, Cookies, browser, csrf_token, page, signed_up, submit

from app import grants
from app.models import AuthorizationCode, LoginSession, SecurityEvent
from app.oauth_rules import redirect_matches, registrable, verifier_matches

LOOPBACK = "http://127.0.0.1/callback"
NEW_PASSWORD = "a different long passphrase for ada"
PRIVATE_USE = "com.example.notes:/oauth"


def add_client(app, *uris, name="Notes"):
    result = app.test_cli_runner().invoke(args=["clients", "add", name, *sum(
        (["--redirect-uri", uri] for uri in uris or (LOOPBACK,)), [])])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()
    return verifier, challenge


def authorize_query(client_id, challenge, redirect_uri="http://127.0.0.1:53682/callback",
                    **extra):
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "state": "xyz", "code_challenge": challenge, "code_challenge_method": "S256",
              **extra}
    return {k: v for k, v in params.items() if v is not None}


def consent(browser_client, params, decision="allow"):
    shown = browser_client.get("/oauth/authorize", query_string=params)
    assert shown.status_code == 200, shown.status_code
    answer = browser_client.post("/oauth/authorize", data={
        **params, "csrf_token": csrf_token(shown), "decision": decision})
    assert answer.status_code == 302
    location = answer.headers["Location"]
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token_call(app, **form):
    return app.test_client(use_cookies=False).post("/oauth/token", data=form)


def sign_in_app(app, person, client_id, redirect_uri="http://127.0.0.1:53682/callback"):
    verifier, challenge = pkce()
    _, answer = consent(person, authorize_query(client_id, challenge, redirect_uri))
    response = token_call(app, grant_type="authorization_code", code=answer["code"],
                          redirect_uri=redirect_uri, code_verifier=verifier, client_id=client_id)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def api(app, access_token, path="/api/me", method="GET"):
    return app.test_client(use_cookies=False).open(
        path, method=method, headers={"Authorization": f"Bearer {access_token}"})


def refresh(app, client_id, refresh_token):
    return token_call(app, grant_type="refresh_token", refresh_token=refresh_token,
                      client_id=client_id)


@pytest.fixture
def notes(app):
    return add_client(app, LOOPBACK, PRIVATE_USE)


# -- the pure rules ------------------------------------------------------------------------

@pytest.mark.parametrize("uri, ok", [
    ("http://127.0.0.1/cb", True), ("http://[::1]/cb", True), ("http://localhost/cb", False),
    ("http://example.com/cb", False), ("https://app.example.com/cb", True),
    ("com.example.app:/cb", True), ("myapp:/cb", False), ("javascript:alert(1)", False),
    ("https://app.example.com/cb#frag", False), ("https:///nohost", False),
    ("http://127.0.0.1/" + "a" * 600, False), ("http://127.0.0.1/a b", False),
])
def test_which_redirect_uris_may_be_registered(uri, ok):
    assert (registrable(uri) is None) == ok


@pytest.mark.parametrize("uri, ok", [
    ("http://127.0.0.1:53682/callback", True), ("http://127.0.0.1/callback", True),
    ("http://127.0.0.1:1/callback", True), ("http://127.0.0.1:53682/callback/x", False),
    ("http://127.0.0.1:53682/Callback", False), ("http://127.0.0.1:99999/callback", False),
    ("http://127.0.0.2:53682/callback", False), ("https://127.0.0.1:53682/callback", False),
    ("http://127.0.0.1:53682/callback?x=1", False), ("com.example.notes:/oauth", True),
    ("com.example.notes:/oauth/", False), ("http://127.0.0.1@evil.test/callback", False),
])
def test_loopback_matches_on_any_port_everything_else_exactly(uri, ok):
    assert redirect_matches([LOOPBACK, PRIVATE_USE], uri) == ok


def test_pkce_s256_of_rfc7636_appendix_b():
    assert verifier_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not verifier_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
                                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not verifier_matches("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


# -- registration --------------------------------------------------------------------------

def test_clients_add_list_remove(app, ada):
    client_id = add_client(app, LOOPBACK)
    listed = app.test_cli_runner().invoke(args=["clients", "list"]).output
    assert client_id in listed and "Notes" in listed and LOOPBACK in listed
    sign_in_app(app, ada, client_id)
    removed = app.test_cli_runner().invoke(args=["clients", "remove", client_id])
    assert removed.exit_code == 0 and "1 sessions ended" in removed.output
    assert LoginSession.select().where(LoginSession.client_id == client_id,
                                       LoginSession.ended_at.is_null()).count() == 0
    bad = app.test_cli_runner().invoke(args=["clients", "add", "X", "--redirect-uri",
                                             "http://localhost/cb"])
    assert bad.exit_code == 1 and "loopback" in bad.output


# -- /oauth/authorize ------------------------------------------------------------------------

def test_the_whole_flow_code_tokens_api_refresh(app, ada, notes, clock):
    verifier, challenge = pkce()
    params = authorize_query(notes, challenge)
    shown = ada.get("/oauth/authorize", query_string=params)
    consent_page = page(shown)
    assert consent_page.find("h1").text == "Sign in to Notes on this device?"
    assert consent_page.find(attrs={"data-test": "allow"}) is not None
    location, answer = consent(ada, params)
    assert location.startswith("http://127.0.0.1:53682/callback?")
    assert answer["state"] == "xyz" and answer["iss"] == "http://localhost"
    response = token_call(app, grant_type="authorization_code", code=answer["code"],
                          redirect_uri=params["redirect_uri"], code_verifier=verifier,
                          client_id=notes)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    me = api(app, body["access_token"])
    assert me.status_code == 200 and me.get_json()["email"] == "ada@example.com"
    assert "Set-Cookie" not in me.headers
    clock.advance(310)
    assert api(app, body["access_token"]).status_code == 401
    renewed = refresh(app, notes, body["refresh_token"])
    assert renewed.status_code == 200
    fresh = renewed.get_json()
    assert fresh["refresh_token"] != body["refresh_token"]
    assert api(app, fresh["access_token"]).status_code == 200
    session = LoginSession.get(LoginSession.client_id == notes)
    assert session.start_method == "app" and session.device_name.startswith("Notes (")


def test_a_person_not_signed_in_signs_in_first_and_comes_back(app, client, notes):
    signed_up(client)
    submit(client, "/logout", {}, form_page="/account")
    _, challenge = pkce()
    params = authorize_query(notes, challenge)
    answer = client.get("/oauth/authorize", query_string=params)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login?next=/oauth/authorize%3F") or \
        answer.headers["Location"].startswith("/login?next=/oauth/authorize?")


@pytest.mark.parametrize("change", [{"client_id": "nobody"}, {"client_id": None},
                                    {"redirect_uri": "http://127.0.0.1:53682/elsewhere"},
                                    {"redirect_uri": "https://evil.example/cb"},
                                    {"redirect_uri": None}])
def test_an_unknown_client_or_redirect_uri_gets_a_page_never_a_redirect(ada, notes, change):
    _, challenge = pkce()
    params = {**authorize_query(notes, challenge), **change}
    params = {k: v for k, v in params.items() if v is not None}
    response = ada.get("/oauth/authorize", query_string=params)
    assert response.status_code == 400 and "Location" not in response.headers


@pytest.mark.parametrize("change, error", [
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
])
def test_other_bad_requests_redirect_with_the_error(ada, notes, change, error):
    _, challenge = pkce()
    params = {k: v for k, v in {**authorize_query(notes, challenge), **change}.items()
              if v is not None}
    response = ada.get("/oauth/authorize", query_string=params)
    assert response.status_code == 302
    answer = parse_qs(urlsplit(response.headers["Location"]).query)
    assert answer["error"] == [error] and answer["state"] == ["xyz"] and "iss" in answer
    assert "code" not in answer


def test_cancel_answers_access_denied(ada, notes):
    _, challenge = pkce()
    _, answer = consent(ada, authorize_query(notes, challenge), decision="cancel")
    assert answer["error"] == "access_denied" and "code" not in answer


def test_consent_without_the_csrf_token_is_refused(ada, notes):
    _, challenge = pkce()
    response = ada.post("/oauth/authorize", data={**authorize_query(notes, challenge),
                                                   "decision": "allow"})
    assert response.status_code == 400
    assert AuthorizationCode.select().count() == 0


def test_a_private_use_scheme_gets_its_redirect(app, ada, notes):
    body = sign_in_app(app, ada, notes, redirect_uri=PRIVATE_USE)
    assert api(app, body["access_token"]).status_code == 200


# -- the code -------------------------------------------------------------------------------

def code_for(person, client_id, verifier_challenge=None):
    verifier, challenge = verifier_challenge or pkce()
    params = authorize_query(client_id, challenge)
    _, answer = consent(person, params)
    return answer["code"], verifier, params["redirect_uri"]


@pytest.mark.parametrize("change", ["verifier", "redirect_uri", "client", "expired"])
def test_a_code_is_bound_to_its_client_uri_and_challenge_and_lives_60_seconds(
        app, ada, notes, clock, change):
    other = add_client(app, LOOPBACK, name="Other")
    code, verifier, uri = code_for(ada, notes)
    form = dict(grant_type="authorization_code", code=code, redirect_uri=uri,
                code_verifier=verifier, client_id=notes)
    if change == "verifier":
        form["code_verifier"] = pkce()[0]
    elif change == "redirect_uri":
        form["redirect_uri"] = "http://127.0.0.1:1/callback"
    elif change == "client":
        form["client_id"] = other
    else:
        clock.advance(61)
    response = token_call(app, **form)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert not LoginSession.select().where(LoginSession.client_id != "").exists()


def test_a_second_use_of_a_code_is_refused_and_ends_the_session_it_started(app, ada, notes):
    code, verifier, uri = code_for(ada, notes)
    form = dict(grant_type="authorization_code", code=code, redirect_uri=uri,
                code_verifier=verifier, client_id=notes)
    first = token_call(app, **form).get_json()
    again = token_call(app, **form)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert api(app, first["access_token"]).status_code == 401
    assert LoginSession.get(LoginSession.client_id == notes).end_reason == "reuse_detected"


# -- /oauth/token errors -----------------------------------------------------------------------

@pytest.mark.parametrize("form, status, error", [
    ({"grant_type": "password", "client_id": "CLIENT"}, 400, "unsupported_grant_type"),
    ({"client_id": "CLIENT"}, 400, "invalid_request"),
    ({"grant_type": "refresh_token", "client_id": "CLIENT"}, 400, "invalid_request"),
    ({"grant_type": "authorization_code", "client_id": "CLIENT", "code": "x"}, 400,
     "invalid_request"),
    ({"grant_type": "refresh_token", "refresh_token": "x" * 43, "client_id": "CLIENT"}, 400,
     "invalid_grant"),
    ({"grant_type": "refresh_token", "refresh_token": "x"}, 401, "invalid_client"),
    ({"grant_type": "refresh_token", "refresh_token": "x", "client_id": "who"}, 401,
     "invalid_client"),
])
def test_token_errors_follow_rfc6749(app, notes, form, status, error):
    form = {k: v.replace("CLIENT", notes) for k, v in form.items()}
    response = token_call(app, **form)
    assert response.status_code == status
    body = response.get_json()
    assert body["error"] == error and isinstance(body["error_description"], str)
    assert response.headers["Cache-Control"] == "no-store"


def test_the_token_endpoint_takes_form_bodies_only_and_no_get(app, notes):
    client = app.test_client(use_cookies=False)
    assert client.post("/oauth/token", json={"grant_type": "refresh_token",
                                             "client_id": notes}).status_code == 400
    assert client.get("/oauth/token").status_code == 405


def test_the_token_endpoint_ignores_a_browsers_cookies(app, ada, notes):
    """No cookie is read there: a signed-in browser's request is anybody's, no cookie set."""
    response = ada.post("/oauth/token", data={"grant_type": "refresh_token",
                                              "refresh_token": Cookies.of(ada).session,
                                              "client_id": notes})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert "Set-Cookie" not in response.headers
    assert ada.get("/api/me").status_code == 200


# -- rotation: the browser's rules -----------------------------------------------------------

def test_parallel_or_repeated_refreshes_within_grace_get_one_successor(app, ada, notes, clock):
    body = sign_in_app(app, ada, notes)
    answers = [refresh(app, notes, body["refresh_token"]).get_json() for _ in range(3)]
    assert len({a["refresh_token"] for a in answers}) == 1


def test_a_lost_response_is_recovered_until_the_successor_is_used(app, ada, notes, clock):
    body = sign_in_app(app, ada, notes)
    lost = refresh(app, notes, body["refresh_token"]).get_json()
    clock.advance(120)  # past the grace window, the successor never used
    again = refresh(app, notes, body["refresh_token"])
    assert again.status_code == 200
    assert again.get_json()["refresh_token"] == lost["refresh_token"]


def test_a_replay_after_the_successor_was_used_ends_the_session(app, ada, notes, clock):
    body = sign_in_app(app, ada, notes)
    fresh = refresh(app, notes, body["refresh_token"]).get_json()
    assert api(app, fresh["access_token"]).status_code == 200  # the successor is proven
    clock.advance(60)
    replay = app.test_client(use_cookies=False).post(
        "/oauth/token", data={"grant_type": "refresh_token", "client_id": notes,
                              "refresh_token": body["refresh_token"]},
        environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert api(app, fresh["access_token"]).status_code == 401
    assert refresh(app, notes, fresh["refresh_token"]).status_code == 400
    session = LoginSession.get(LoginSession.client_id == notes)
    assert session.end_reason == "reuse_detected" and session.end_ip_address == "203.0.113.7"
    ended = page(ada.get("/sessions")).find(attrs={"data-end-reason": "reuse_detected"})
    assert ended is not None and "Notes" in ended.text


# -- bearer tokens on /api/ --------------------------------------------------------------------

def test_bearer_401_says_so_and_the_browser_token_is_no_bearer(app, ada, notes):
    response = api(app, "not-a-token")
    assert response.status_code == 401 and "Bearer" in response.headers["WWW-Authenticate"]
    assert api(app, Cookies.of(ada).access).status_code == 401


def test_an_app_token_is_no_browser_cookie(app, ada, notes):
    body = sign_in_app(app, ada, notes)
    other = browser(app)
    Cookies(body["access_token"], None).put(other)
    assert other.get("/api/me").status_code == 401


def test_a_header_and_cookies_together_are_refused(app, ada, notes):
    body = sign_in_app(app, ada, notes)
    response = ada.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 400


def test_an_app_deletes_sessions_without_the_csrf_header(app, ada, notes):
    body = sign_in_app(app, ada, notes)
    me = api(app, body["access_token"]).get_json()
    response = api(app, body["access_token"], f"/api/sessions/{me['session_id']}", "DELETE")
    assert response.status_code == 204 and "Set-Cookie" not in response.headers
    assert api(app, body["access_token"]).status_code == 401


def test_api_sessions_lists_the_app_session_as_current(app, ada, notes):
    body = sign_in_app(app, ada, notes)
    listed = api(app, body["access_token"], "/api/sessions").get_json()["sessions"]
    assert listed[0]["current"] and listed[0]["device"].startswith("Notes (")


# -- app sessions are sessions ---------------------------------------------------------------

def test_revoking_the_app_on_the_sessions_page_makes_its_next_call_401(app, ada, notes):
    body = sign_in_app(app, ada, notes)
    session = LoginSession.get(LoginSession.client_id == notes)
    sessions_page = ada.get("/sessions")
    card = page(sessions_page).find(attrs={"data-session-id": session.public_id})
    assert card is not None
    submit(ada, f"/sessions/{session.public_id}/revoke", {}, form_page="/sessions")
    assert api(app, body["access_token"]).status_code == 401
    assert refresh(app, notes, body["refresh_token"]).status_code == 400


@pytest.mark.parametrize("how", ["password", "others"])
def test_a_password_change_or_signing_out_the_others_ends_the_app(app, ada, notes, how):
    body = sign_in_app(app, ada, notes)
    if how == "password":
        submit(ada, "/account/password", {"current_password": PASSWORD,
                                          "new_password": NEW_PASSWORD},
               form_page="/account/password")
    else:
        submit(ada, "/sessions/revoke-others", {}, form_page="/sessions")
    assert api(app, body["access_token"]).status_code == 401
    assert refresh(app, notes, body["refresh_token"]).status_code == 400
    assert ada.get("/api/me").status_code == 200


def test_the_timeline_says_how_the_app_session_started(app, ada, notes):
    sign_in_app(app, ada, notes)
    session = LoginSession.get(LoginSession.client_id == notes)
    timeline = ada.get(f"/sessions/{session.public_id}").get_data(as_text=True)
    assert "Signed in to an app" in timeline


# -- /oauth/revoke and metadata --------------------------------------------------------------

def test_revoke_ends_the_apps_session_and_answers_200_whatever_the_token(app, ada, notes):
    body = sign_in_app(app, ada, notes)
    client = app.test_client(use_cookies=False)
    assert client.post("/oauth/revoke", data={"token": "garbage",
                                              "client_id": notes}).status_code == 200
    other = add_client(app, LOOPBACK, name="Other")
    client.post("/oauth/revoke", data={"token": body["refresh_token"], "client_id": other})
    assert api(app, body["access_token"]).status_code == 200  # not that app's token
    answer = client.post("/oauth/revoke", data={"token": body["refresh_token"],
                                                "client_id": notes})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert api(app, body["access_token"]).status_code == 401
    assert SecurityEvent.select().where(SecurityEvent.kind == "signed_out").exists()


def test_metadata_describes_the_endpoints(app):
    meta = app.test_client().get("/.well-known/oauth-authorization-server").get_json()
    assert meta["issuer"] == "http://localhost"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint"].endswith("/oauth/token")
    assert meta["jwks_uri"].endswith("/.well-known/jwks.json")
    assert meta["authorization_response_iss_parameter_supported"] is True


def test_grants_register_refuses_bad_input(app):
    with app.app_context():
        for name, uris, dpop in [("", [LOOPBACK], ""), ("X", [], ""), ("X", [LOOPBACK], "yes"),
                                 ("X" * 81, [LOOPBACK], "")]:
            with pytest.raises(ValueError):
                grants.register(name, uris, dpop=dpop, now=0)


def test_the_consent_form_may_go_to_the_apps_redirect_uri_and_nowhere_else(ada, notes):
    """Chromium checks a form's redirect against form-action: Allow must reach the app."""
    _, challenge = pkce()
    shown = ada.get("/oauth/authorize", query_string=authorize_query(notes, challenge))
    policy = shown.headers["Content-Security-Policy"]
    assert "form-action 'self' http://127.0.0.1:53682;" in policy
    assert "frame-ancestors 'none'" in policy
    private = ada.get("/oauth/authorize", query_string=authorize_query(
        notes, challenge, PRIVATE_USE)).headers["Content-Security-Policy"]
    assert "form-action 'self' com.example.notes:;" in private


def test_another_authorization_scheme_leaves_the_browser_alone(ada):
    """A browser behind a proxy's HTTP authentication sends Basic with every call."""
    response = ada.get("/api/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 200 and response.get_json()["email"] == "ada@example.com"
