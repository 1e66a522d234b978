"""A bound session against a copy of its cookies: no path that answers cookies alone hands out
new credentials for it, and asking for challenges voids none of its owner's."""

from __future__ import annotations

import pytest
from mailed import press, signed_in
from support import PASSWORD, Cookies, browser, csrf_token, only_session, submit
from test_dbsc import HTTPS, challenge_of, ec_key, proof, refresh, registered

from app import keyproofs
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.config import KEY_CHALLENGES_KEPT
from app.models import KeyChallenge, LoginSession
from app.sessions import store

NEW_PASSWORD = "a brand new and rather long passphrase"


def set_cookies(response) -> dict[str, str]:
    """The auth cookies a response sets, by name (a deletion sets an empty value)."""
    found = {}
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name in (ACCESS_COOKIE, SESSION_COOKIE):
            found[name] = rest.split(";", 1)[0]
    return found


def copied(client):
    thief = browser(client.application)
    thief.environ_base["REMOTE_ADDR"] = "198.51.100.23"
    Cookies.of(client).put(thief)
    return thief


def owner_renews(client, key, public_id: str) -> None:
    challenge = challenge_of(refresh(client, session_id=public_id), public_id)
    renewed = refresh(client, session_id=public_id, key=key, challenge=challenge)
    assert renewed.status_code == 200 and renewed.get_json().get("continue") is not False
    assert client.get("/api/me", base_url=HTTPS).status_code == 200


def revoke_others(client, **fields):
    token = csrf_token(client.get("/sessions/revoke-others", base_url=HTTPS))
    return client.post("/sessions/revoke-others", data={"csrf_token": token, **fields},
                       base_url=HTTPS)


@pytest.mark.parametrize("reauth", [False, True], ids=["within-window", "password-asked"])
def test_signing_out_other_sessions_issues_nothing_for_a_bound_session(make_app, clock, reauth):
    """With the password asked again or not, a bound session's re-key sets no new cookies:
    the access cookie goes (the copy is refused at once) and only a key proof renews it."""
    client = browser(make_app(GATEHOUSE_REAUTH_WINDOW=60))
    key = ec_key()
    registered(client, key)
    public_id, generation = only_session().public_id, only_session().generation
    if reauth:
        clock.advance(61)
    thief = copied(client)
    done = revoke_others(thief, **({"password": PASSWORD} if reauth else {}))
    assert done.status_code == 302
    assert set_cookies(done) == {ACCESS_COOKIE: ""}
    assert only_session().generation == generation and only_session().ended_at is None
    assert thief.get("/api/me", base_url=HTTPS).status_code == 401
    assert thief.get("/api/me", base_url=HTTPS).get_json()["reason"] == "key_missing"
    owner_renews(client, key, public_id)


def test_the_owner_changing_the_password_of_a_bound_session_renews_with_the_key(client):
    """The password change re-keys this session too: a copy taken before it is refused at
    once, and the owner's browser carries on through a refresh."""
    key = ec_key()
    registered(client, key)
    public_id = only_session().public_id
    thief = copied(client)
    changed = submit(client, "/account/password", {
        "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD}, base_url=HTTPS)
    assert changed.status_code == 302, changed.get_data(as_text=True)
    assert set_cookies(changed) == {ACCESS_COOKIE: ""}
    assert thief.get("/api/me", base_url=HTTPS).status_code == 401
    owner_renews(client, key, public_id)
    assert only_session().ended_at is None


def test_confirming_a_new_address_in_a_bound_session_issues_nothing(mail_app, smtp, clock):
    ada = signed_in(mail_app, smtp)
    (session,) = LoginSession.select().where(LoginSession.ended_at.is_null())
    store.bind_key(session.id, "k" * 43, now=clock.now)
    submit(ada, "/account/email", {"email": "ada@new.example", "current_password": PASSWORD})
    link = smtp.mailbox.about("ada@new.example", "Confirm your new").link(
        "/account/email/confirm#")
    confirmed = press(ada, link)
    assert confirmed.status_code == 302
    assert set_cookies(confirmed) == {}
    assert LoginSession.get_by_id(session.id).generation == session.generation


def test_challenges_asked_by_a_copy_stay_bounded_and_void_none(client, clock):
    """Far more asks than are kept: the table holds at most KEY_CHALLENGES_KEPT for the
    session, the owner's first one still answers, and every later ask gets one that does."""
    key = ec_key()
    registered(client, key)
    public_id = only_session().public_id
    thief = copied(client)
    owners = challenge_of(refresh(client, session_id=public_id), public_id)
    given = {challenge_of(refresh(thief, session_id=public_id), public_id)
             for _ in range(3 * KEY_CHALLENGES_KEPT)}
    assert KeyChallenge.select().count() == KEY_CHALLENGES_KEPT
    assert len(given) == KEY_CHALLENGES_KEPT - 1  # beyond, the newest is given again
    late = challenge_of(refresh(client, session_id=public_id), public_id)
    assert late in given
    assert refresh(client, session_id=public_id, key=key, challenge=owners).status_code == 200
    clock.advance(301)  # all expired: the next ask starts afresh
    fresh = challenge_of(refresh(thief, session_id=public_id), public_id)
    assert fresh not in given and KeyChallenge.select().count() == 1


def test_another_key_cannot_take_a_bound_sessions_challenge(client):
    """Registering with another key over a challenge the copy was given (once the kept ones
    are shared) is refused before the challenge is taken: the owner's proof still answers."""
    key = ec_key()
    registered(client, key)
    public_id = only_session().public_id
    thief = copied(client)
    for _ in range(KEY_CHALLENGES_KEPT):
        challenge_of(refresh(thief, session_id=public_id), public_id)
    shared = challenge_of(refresh(client, session_id=public_id), public_id)
    taken = thief.post(keyproofs.REGISTER_PATH, base_url=HTTPS,
                       headers={keyproofs.PROOF_HEADER: proof(ec_key(), shared)})
    assert taken.status_code == 409
    assert refresh(client, session_id=public_id, key=key, challenge=shared).status_code == 200
