"""Review 2 (the thief): what an app's sign-in lets a holder of someone's credentials do."""

from support import Cookies, browser, login
from test_apps_oauth import (
    LOOPBACK,
    add_client,
    authorize_query,
    consent,
    pkce,
    sign_in_app,
    token_call,
)

from app.carriers import SESSION_COOKIE
from app.models import LoginSession

REDIRECT = "http://127.0.0.1:53682/callback"


def test_a_stale_browser_session_cannot_mint_a_freshly_proven_app_session(app, ada, clock):
    """A thief holding a copy of ada's browser cookies, signed in long ago, may not sign out
    her other sessions without the password. Authorizing a public client (anyone can play
    one: no secret) must not hand the thief a session whose "last proof" is now."""
    notes = add_client(app, LOOPBACK)
    phone = browser(app)
    login(phone)  # ada's other device, the one the thief wants to cut off
    phone_session = LoginSession.select().order_by(LoginSession.id.desc()).get().public_id
    clock.advance(3600)  # ada's laptop session is an hour old: no recent proof
    # The thief's browser, with a copy of the laptop's cookies.
    thief = browser(app)
    Cookies.of(ada).put(thief)
    refused = thief.delete(f"/api/sessions/{phone_session}",
                           headers={"X-Gatehouse-Request": "1"})
    assert refused.status_code == 403  # the rule the app path must not get around
    tokens = sign_in_app(app, thief, notes)
    answer = app.test_client(use_cookies=False).delete(
        f"/api/sessions/{phone_session}",
        headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert answer.status_code == 403, "an app session inherits a fresh proof it never made"
    assert LoginSession.get(LoginSession.public_id == phone_session).ended_at is None


def test_a_code_issued_before_an_administrators_lock_starts_no_session(app, ada):
    """ "No session starts, by any method" once an administrator locks the account: the
    token endpoint starts one from a code the consent page issued seconds before."""
    notes = add_client(app, LOOPBACK)
    verifier, challenge = pkce()
    _, answer = consent(ada, authorize_query(notes, challenge))
    locked = app.test_cli_runner().invoke(
        args=["users", "lock", "ada@example.com", "--reason", "compromised"])
    assert locked.exit_code == 0, locked.output
    response = token_call(app, grant_type="authorization_code", code=answer["code"],
                          redirect_uri=REDIRECT, code_verifier=verifier, client_id=notes)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_grant"
    assert LoginSession.select().where(LoginSession.ended_at.is_null()).count() == 0


def test_an_app_refresh_token_is_no_browser_session_cookie(app, ada):
    """An app's access token is refused as a browser's cookie ("an app's token is no
    browser's cookie"); its refresh token must be too. Otherwise a refresh token lifted from
    an app (a keychain backup, a log) becomes a full browser session on every page."""
    notes = add_client(app, LOOPBACK)
    tokens = sign_in_app(app, ada, notes)
    thief = browser(app)
    thief.set_cookie(SESSION_COOKIE, tokens["refresh_token"])
    answer = thief.get("/account")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_a_code_issued_before_a_password_change_starts_no_session(app, ada):
    """A thief with a copy of ada's cookies takes a code; ada notices and changes her password,
    which ends every session. The thief's code, redeemed seconds later, must not start an app
    session that outlives the change."""
    from support import PASSWORD, submit

    notes = add_client(app, LOOPBACK)
    thief = browser(app)
    Cookies.of(ada).put(thief)
    verifier, challenge = pkce()
    _, answer = consent(thief, authorize_query(notes, challenge))
    changed = submit(ada, "/account/password", {"current_password": PASSWORD,
                                               "new_password": "a different long passphrase"},
                     form_page="/account/password")
    assert changed.status_code == 302
    response = token_call(app, grant_type="authorization_code", code=answer["code"],
                          redirect_uri=REDIRECT, code_verifier=verifier, client_id=notes)
    assert response.status_code == 400, "the thief's app session survives the password change"
