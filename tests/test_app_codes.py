"""An authorization code is worth what the browser session that consented is worth: no more
recently proven, no longer live, and never for a locked account."""

from test_apps_oauth import LOOPBACK, add_client, authorize_query, consent, pkce, token_call

from app.models import AuthorizationCode, LoginSession, User
from app.sessions import rules, store

REDIRECT = "http://127.0.0.1:53682/callback"


def _code(app, person, notes=None):
    notes = notes or add_client(app, LOOPBACK)
    verifier, challenge = pkce()
    _, answer = consent(person, authorize_query(notes, challenge))
    return notes, verifier, answer["code"]


def _redeem(app, notes, verifier, code):
    return token_call(app, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                      code_verifier=verifier, client_id=notes)


def _browser_session() -> LoginSession:
    return LoginSession.get(LoginSession.client_id == "")


def test_the_app_session_starts_with_the_consenting_sessions_proof(app, ada, clock):
    notes, verifier, code = _code(app, ada)
    proven = _browser_session().authenticated_at
    clock.advance(30)
    assert _redeem(app, notes, verifier, code).status_code == 200
    started = LoginSession.get(LoginSession.client_id == notes)
    assert started.authenticated_at == proven < started.created_at


def test_a_code_from_a_session_signed_out_since_starts_no_session(app, ada, clock):
    notes, verifier, code = _code(app, ada)
    session = _browser_session()
    store.revoke(session.public_id, user_id=session.user_id, reason=rules.SIGNED_OUT,
                 now=clock())
    answer = _redeem(app, notes, verifier, code)
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant"
    assert not LoginSession.select().where(LoginSession.client_id == notes).exists()


def test_a_code_from_before_a_credential_change_starts_no_session(app, ada):
    """The consenting session kept through the change (its epoch moved with it), the code
    still there (a change landing between the code's checks): the code's epoch is old."""
    notes, verifier, code = _code(app, ada)
    session = _browser_session()
    User.update(credential_epoch=User.credential_epoch + 1).execute()
    LoginSession.update(credential_epoch=LoginSession.credential_epoch + 1).where(
        LoginSession.id == session.id).execute()
    answer = _redeem(app, notes, verifier, code)
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant"


def test_a_locked_account_redeems_no_code_and_refreshes_nothing(app, ada, clock):
    """The lock's own check, apart from the sessions and codes the lock ends."""
    notes, verifier, code = _code(app, ada)
    first = _redeem(app, notes, verifier, code)
    assert first.status_code == 200
    _, verifier, code = _code(app, ada, notes)
    User.update(locked_at=clock()).execute()
    answer = _redeem(app, notes, verifier, code)
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant"
    assert "locked" in answer.get_json()["error_description"]
    refused = token_call(app, grant_type="refresh_token", client_id=notes,
                         refresh_token=first.get_json()["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert "locked" in refused.get_json()["error_description"]


def test_a_lock_deletes_the_codes_no_app_has_redeemed(app, ada):
    notes, verifier, used = _code(app, ada)
    assert _redeem(app, notes, verifier, used).status_code == 200
    _code(app, ada, notes)
    assert AuthorizationCode.select().where(AuthorizationCode.used_at.is_null()).count() == 1
    locked = app.test_cli_runner().invoke(
        args=["users", "lock", "ada@example.com", "--reason", "lost"])
    assert locked.exit_code == 0, locked.output
    assert AuthorizationCode.select().where(AuthorizationCode.used_at.is_null()).count() == 0
    assert AuthorizationCode.select().count() == 1  # the used one: its reuse still ends
