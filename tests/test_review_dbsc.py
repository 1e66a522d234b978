"""Device-bound sessions against a thief holding a copy of the cookies (review)."""

from __future__ import annotations

from support import Cookies, browser, csrf_token, only_session
from test_dbsc import EXPIRED, HTTPS, challenge_of, ec_key, refresh, registered


def test_a_copy_cannot_rekey_a_bound_session_into_fresh_credentials(client, clock):
    """A copy of a bound session's cookies is worth one access token's lifetime. "Sign out
    all other sessions" within the re-authentication window re-keys the session without any
    proof of its key: the copy must not come out of it with a fresh access token, nor leave
    the owner's browser (which holds the key) unable to refresh."""
    key = ec_key()
    registered(client, key)
    session = only_session()
    thief = browser(client.application)
    thief.environ_base["REMOTE_ADDR"] = "198.51.100.23"
    Cookies.of(client).put(thief)
    token = csrf_token(thief.get("/sessions/revoke-others", base_url=HTTPS))
    done = thief.post("/sessions/revoke-others", data={"csrf_token": token}, base_url=HTTPS)
    assert done.status_code == 302
    clock.advance(EXPIRED)
    assert thief.get("/api/me", base_url=HTTPS).status_code == 401, (
        "the copy rotated a bound session without its key and is still signed in")
    clock.advance(60)  # past the grace window
    challenge = challenge_of(refresh(client, session_id=session.public_id), session.public_id)
    renewed = refresh(client, session_id=session.public_id, key=key, challenge=challenge)
    assert renewed.status_code == 200 and renewed.get_json().get("continue") is not False, (
        f"the owner's browser cannot refresh: {renewed.get_json()}, "
        f"session ended: {only_session().end_reason}")
    assert client.get("/api/me", base_url=HTTPS).status_code == 200


def test_a_copy_asking_for_challenges_does_not_void_the_owners(client, clock):
    """Whoever holds a copy of the cookie may ask /dbsc/refresh for challenges; five of them
    between the owner's challenge and its proof drop the owner's, and the owner's browser,
    which holds the key, cannot renew its session (it is signed out while the copy asks)."""
    key = ec_key()
    registered(client, key)
    session = only_session()
    thief = browser(client.application)
    Cookies.of(client).put(thief)
    clock.advance(EXPIRED)
    challenge = challenge_of(refresh(client, session_id=session.public_id), session.public_id)
    for _ in range(5):
        assert refresh(thief, session_id=session.public_id).status_code == 403
    renewed = refresh(client, session_id=session.public_id, key=key, challenge=challenge)
    assert renewed.status_code == 200, "the owner's proof was refused: its challenge was dropped"
