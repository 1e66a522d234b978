"""Passkeys through the real routes, answered by a software authenticator: adding, signing in,
re-authenticating and removing, and every hostile answer refused (a replay, another browser's
challenge, a removed credential, a wrong origin or RP id, no user verification)."""

from __future__ import annotations

import json

import pytest
from support import UA_PHONE, browser, csrf_token, page, signed_up, submit
from webauthn_soft import SoftAuthenticator

from app import audit
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.models import LoginSession, Passkey, SecurityEvent, WebAuthnChallenge

PUBLIC = "http://localhost"  # the test client's own origin


@pytest.fixture
def app(make_app):
    return make_app(GATEHOUSE_PUBLIC_URL=PUBLIC)


@pytest.fixture
def key():
    return SoftAuthenticator()


def add_passkey(client, authenticator, name="Laptop", **knobs):
    """Press "Add a passkey", let the authenticator answer, post the answer as the page does."""
    html = page(submit(client, "/account/passkeys/new", {}, form_page="/account/passkeys"))
    form = html.select_one("form[data-passkey-register]")
    answer = authenticator.create(json.loads(form["data-options"]), **knobs)
    token = form.select_one('input[name="csrf_token"]')["value"]
    return client.post("/account/passkeys", data={"csrf_token": token, "name": name,
                                                  "credential": json.dumps(answer)})


def sign_in_options(client) -> tuple[dict, str]:
    token = csrf_token(client.get("/login"))
    response = client.post("/login/passkey/options", headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    return response.get_json(), token


def post_answer(client, token: str, answer: dict, next_page: str = ""):
    return client.post("/login/passkey", data={"csrf_token": token, "next": next_page,
                                               "credential": json.dumps(answer)})


def passkey_sign_in(client, authenticator, **knobs):
    options, token = sign_in_options(client)
    return post_answer(client, token, authenticator.get(options, **knobs))


def signed_in_as(client) -> str | None:
    response = client.get("/api/me")
    return response.get_json()["email"] if response.status_code == 200 else None


def sign_out(client) -> None:
    submit(client, "/logout", {}, form_page="/account")


@pytest.fixture
def ada_with_passkey(ada, key):
    assert add_passkey(ada, key).status_code == 302
    sign_out(ada)
    return ada


def test_added_passkey_is_listed_with_name_added_and_last_used(ada, key):
    response = add_passkey(ada, key, name="  Work   laptop ")
    assert response.status_code == 302
    html = page(ada.get("/account/passkeys"))
    (row,) = html.select("[data-passkey-id]")
    assert row.h2.get_text() == "Work laptop"
    assert "Never" in row.select_one('[data-field="last-used"]').get_text()
    passkey = Passkey.get()
    assert passkey.backup_eligible and passkey.backed_up and passkey.sign_count == 1
    assert SecurityEvent.get(SecurityEvent.kind == "passkey_added").detail == "Work laptop"
    row = page(ada.get("/sessions")).select_one('[data-event="passkey_added"]')
    assert "Passkey added: Work laptop" in row.get_text()


def test_a_passkey_signs_in_on_its_own_and_the_session_says_so(ada_with_passkey, key):
    response = passkey_sign_in(ada_with_passkey, key)
    assert response.status_code == 302 and signed_in_as(ada_with_passkey) == "ada@example.com"
    session = LoginSession.select().order_by(LoginSession.id.desc()).get()
    assert session.start_method == "passkey"
    card = page(ada_with_passkey.get("/sessions")).select_one('[data-current="true"]')
    assert card.select_one('[data-field="method"]').get_text() == "with a passkey"
    timeline = page(ada_with_passkey.get(f"/sessions/{session.public_id}"))
    assert timeline.select_one('[data-field="start"]').get_text() == "A passkey"
    assert Passkey.get().last_used_at is not None and Passkey.get().sign_count == 2


def test_sign_in_with_a_passkey_returns_to_the_page_asked_for(ada_with_passkey, key):
    options, token = sign_in_options(ada_with_passkey)
    response = post_answer(ada_with_passkey, token, key.get(options), "/sessions")
    assert response.headers["Location"].endswith("/sessions")


def test_a_replayed_assertion_is_refused(ada_with_passkey, key):
    options, token = sign_in_options(ada_with_passkey)
    answer = key.get(options)
    assert post_answer(ada_with_passkey, token, answer).status_code == 302
    sign_out(ada_with_passkey)
    token = csrf_token(ada_with_passkey.get("/login"))
    assert post_answer(ada_with_passkey, token, answer).status_code == 401  # no challenge now
    _, token = sign_in_options(ada_with_passkey)  # a fresh challenge: still not this answer's
    assert post_answer(ada_with_passkey, token, answer).status_code == 401
    assert signed_in_as(ada_with_passkey) is None


def test_a_challenge_issued_to_another_browser_is_refused(ada_with_passkey, key, app):
    other = browser(app, UA_PHONE)
    theirs, _ = sign_in_options(other)
    _, token = sign_in_options(ada_with_passkey)
    answer = key.get(theirs)  # signed over the other browser's challenge
    assert post_answer(ada_with_passkey, token, answer).status_code == 401
    assert signed_in_as(ada_with_passkey) is None


def test_an_expired_challenge_is_refused(ada_with_passkey, key, clock):
    options, token = sign_in_options(ada_with_passkey)
    clock.advance(301)
    assert post_answer(ada_with_passkey, token, key.get(options)).status_code == 401


@pytest.mark.parametrize("knobs", [
    {"origin": "http://evil.example"}, {"origin": "http://127.0.0.1"},
    {"rp_id": "evil.example"}, {"uv": False},
], ids=["other-origin", "ip-origin", "other-rp-id", "no-user-verification"])
def test_a_wrong_origin_rp_id_or_missing_user_verification_is_refused(ada_with_passkey, key,
                                                                       knobs):
    response = passkey_sign_in(ada_with_passkey, key, **knobs)
    assert response.status_code == 401
    assert "That passkey was not accepted" in response.get_data(as_text=True)
    assert signed_in_as(ada_with_passkey) is None
    assert audit.anonymous_count("passkey_failed") == 1


def test_registration_without_user_verification_is_refused(ada, key):
    add_passkey(ada, key, uv=False)
    assert not Passkey.select().exists()


def test_a_removed_passkey_signs_in_no_more(ada, key):
    add_passkey(ada, key)
    (row,) = page(ada.get("/account/passkeys")).select("[data-passkey-id]")
    response = submit(ada, f"/account/passkeys/{row['data-passkey-id']}/remove", {},
                      form_page="/account/passkeys")
    assert response.status_code == 302 and not Passkey.select().exists()
    assert SecurityEvent.select().where(SecurityEvent.kind == "passkey_removed").exists()
    sign_out(ada)
    assert passkey_sign_in(ada, key).status_code == 401 and signed_in_as(ada) is None


def test_a_second_accounts_passkey_reaches_only_that_account(app, ada_with_passkey, key):
    bob = browser(app, UA_PHONE)
    signed_up(bob, "bob@example.com")
    bobs = SoftAuthenticator()
    add_passkey(bob, bobs)
    sign_out(bob)
    assert passkey_sign_in(ada_with_passkey, bobs).status_code == 302
    assert signed_in_as(ada_with_passkey) == "bob@example.com"
    assert passkey_sign_in(bob, key).status_code == 302 and signed_in_as(bob) == "ada@example.com"


def test_adding_and_removing_need_a_recent_sign_in(ada, key, app, clock):
    add_passkey(ada, key)
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    asked = page(submit(ada, "/account/passkeys/new", {}, form_page="/account/passkeys"))
    assert asked.h1.get_text() == "Confirm it's you"
    assert asked.select_one('[data-test="reauth-passkey"]') is not None  # it has a passkey
    (row,) = page(ada.get("/account/passkeys")).select("[data-passkey-id]")
    removal = submit(ada, f"/account/passkeys/{row['data-passkey-id']}/remove", {},
                     form_page="/account/passkeys")
    assert page(removal).h1.get_text() == "Confirm it's you" and Passkey.select().exists()


def reauth_with_passkey(client, html, authenticator, **knobs):
    """The confirmation page's "Confirm with a passkey": a challenge, the answer posted with
    the action's own fields."""
    form = html.select_one('[data-test="reauth"] form')
    fields = {box["name"]: box.get("value", "") for box in form.select("input[name]")}
    options = client.post(form["data-options-url"],
                          headers={"X-CSRFToken": fields["csrf_token"]}).get_json()
    answer = authenticator.get(options, **knobs)
    return client.post(form["action"], data={**fields, "passkey": json.dumps(answer)})


def test_re_authentication_accepts_a_passkey(ada, key, app, clock):
    add_passkey(ada, key)
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    (row,) = page(ada.get("/account/passkeys")).select("[data-passkey-id]")
    asked = page(submit(ada, f"/account/passkeys/{row['data-passkey-id']}/remove", {},
                        form_page="/account/passkeys"))
    assert reauth_with_passkey(ada, asked, key, uv=False).status_code == 401  # refused
    assert Passkey.select().exists()
    asked = page(submit(ada, f"/account/passkeys/{row['data-passkey-id']}/remove", {},
                        form_page="/account/passkeys"))
    response = reauth_with_passkey(ada, asked, key)
    assert response.status_code == 302 and not Passkey.select().exists()
    assert SecurityEvent.get(SecurityEvent.kind == "reauthenticated").detail == "passkey"
    activity = page(ada.get("/sessions")).select('[data-event="reauthenticated"]')
    assert "Passkey used to confirm an action" in activity[0].get_text()
    timeline = page(ada.get(f"/sessions/{LoginSession.get().public_id}")).get_text()
    assert "Passkey used to confirm an action" in timeline


def test_re_authentication_refuses_another_accounts_passkey(ada, key, app, clock):
    add_passkey(ada, key)
    bob = browser(app, UA_PHONE)
    signed_up(bob, "bob@example.com")
    bobs = SoftAuthenticator()
    add_passkey(bob, bobs)
    clock.advance(app.config["GATEHOUSE_REAUTH_WINDOW"] + 1)
    (row,) = page(ada.get("/account/passkeys")).select("[data-passkey-id]")
    asked = page(submit(ada, f"/account/passkeys/{row['data-passkey-id']}/remove", {},
                        form_page="/account/passkeys"))
    assert reauth_with_passkey(ada, asked, bobs).status_code == 401
    assert Passkey.select().where(Passkey.name == "Laptop").count() == 2


def test_rename(ada, key):
    add_passkey(ada, key)
    (row,) = page(ada.get("/account/passkeys")).select("[data-passkey-id]")
    submit(ada, f"/account/passkeys/{row['data-passkey-id']}/name", {"name": "Phone"},
           form_page="/account/passkeys")
    assert Passkey.get().name == "Phone"
    refused = submit(ada, f"/account/passkeys/{row['data-passkey-id']}/name", {"name": ""},
                     form_page="/account/passkeys")
    assert refused.status_code == 400 and Passkey.get().name == "Phone"


def test_someone_elses_passkey_cannot_be_renamed_or_removed(app, ada, key):
    add_passkey(ada, key)
    public_id = Passkey.get().public_id
    bob = browser(app, UA_PHONE)
    signed_up(bob, "bob@example.com")
    for action, data in (("name", {"name": "Mine"}), ("remove", {})):
        response = submit(bob, f"/account/passkeys/{public_id}/{action}", data,
                          form_page="/account/passkeys")
        assert response.status_code == 404
    assert Passkey.get().name == "Laptop"


def test_at_an_ip_address_the_page_says_passkeys_work_at_the_public_address(ada):
    here = page(ada.get("/account/passkeys"))
    assert here.select_one('[data-test="add-passkey"]') is not None
    for name in (ACCESS_COOKIE, SESSION_COOKIE):  # the same browser, opened at 127.0.0.1
        ada.set_cookie(name, ada.get_cookie(name).value, domain="127.0.0.1")
    elsewhere = page(ada.get("http://127.0.0.1/account/passkeys"))
    assert elsewhere.select_one('[data-test="email"], [data-passkey-id], h1').get_text() == \
        "Passkeys"
    note = elsewhere.select_one('[data-test="passkeys-elsewhere"]')
    assert "http://localhost" in note.get_text() and "IP address" in note.get_text()
    assert elsewhere.select_one('[data-test="add-passkey"]') is None


def test_without_a_public_url_passkeys_are_not_offered(make_app):
    client = browser(make_app())
    signed_up(client)
    html = page(client.get("/account/passkeys"))
    assert html.select_one('[data-test="passkeys-unavailable"]') is not None
    token = csrf_token(client.get("/account"))
    assert client.post("/login/passkey/options",
                       headers={"X-CSRFToken": token}).status_code == 404


def test_refused_passkeys_count_against_the_address(make_app, key):
    client = browser(make_app(GATEHOUSE_PUBLIC_URL=PUBLIC, GATEHOUSE_LOGIN_LIMIT_IP=3))
    signed_up(client)
    add_passkey(client, key)
    sign_out(client)
    for _ in range(3):
        assert passkey_sign_in(client, key, uv=False).status_code == 401
    assert passkey_sign_in(client, key).status_code == 429


def test_challenges_are_stored_server_side_and_used_once(ada_with_passkey, key):
    options, token = sign_in_options(ada_with_passkey)
    row = WebAuthnChallenge.get()
    assert row.challenge == options["challenge"] and row.purpose == "sign_in"
    cookie = ada_with_passkey.get_cookie("__Host-flask")
    assert options["challenge"] not in (cookie.value if cookie else "")
    post_answer(ada_with_passkey, token, key.get(options))
    assert not WebAuthnChallenge.select().exists()


def test_the_login_page_offers_passkeys_in_autofill_and_behind_a_button(client):
    html = page(client.get("/login"))
    assert html.select_one('input[name="email"]')["autocomplete"] == "username webauthn"
    button = html.select_one('[data-test="passkey-sign-in"]')
    assert button.has_attr("hidden")  # shown by static/passkeys.js only where it works
    at_ip = page(client.get("http://127.0.0.1/login"))  # where the browser would refuse it
    assert at_ip.select_one('[data-test="passkey-sign-in"]') is None
    assert not at_ip.select('script[src*="passkeys.js"]')


def test_a_passkey_sign_in_needs_no_code_with_two_step_on(ada, key, clock):
    from test_two_step import set_up

    add_passkey(ada, key)
    set_up(ada, clock)
    sign_out(ada)
    response = passkey_sign_in(ada, key)
    assert response.status_code == 302 and not response.headers["Location"].endswith("/code")
    assert signed_in_as(ada) == "ada@example.com"


@pytest.mark.parametrize("shape", ["", "not json", "[]", "{}", '{"rawId": []}', "REAL-ID"])
def test_malformed_answers_are_refused_never_a_500(ada_with_passkey, key, shape):
    options, token = sign_in_options(ada_with_passkey)
    if shape == "REAL-ID":  # a known credential, a response that is no object
        shape = json.dumps({**key.get(options), "response": 5})
    response = ada_with_passkey.post("/login/passkey", data={"csrf_token": token,
                                                             "credential": shape})
    assert response.status_code in (400, 401) and signed_in_as(ada_with_passkey) is None


def test_expired_challenges_are_deleted_as_new_ones_are_made(client, clock):
    token = csrf_token(client.get("/login"))
    for _ in range(3):
        client.post("/login/passkey/options", headers={"X-CSRFToken": token})
    assert WebAuthnChallenge.select().count() == 3
    clock.advance(301)
    client.post("/login/passkey/options", headers={"X-CSRFToken": token})
    assert WebAuthnChallenge.select().count() == 1


def test_a_cloned_authenticator_whose_counter_went_back_is_refused(ada_with_passkey, key):
    assert passkey_sign_in(ada_with_passkey, key).status_code == 302
    sign_out(ada_with_passkey)
    key.counter = 0  # a copy of the key made before its last use
    assert passkey_sign_in(ada_with_passkey, key).status_code == 401
    assert signed_in_as(ada_with_passkey) is None


def test_deleting_the_account_erases_its_passkeys_and_two_step_sign_in(ada, key, clock):
    from test_two_step import set_up

    from app.models import RecoveryCode, TwoFactor

    add_passkey(ada, key)
    set_up(ada, clock)
    done = submit(ada, "/account/delete", {}, form_page="/account/delete")
    assert done.status_code == 302
    for model in (Passkey, TwoFactor, RecoveryCode, WebAuthnChallenge):
        assert not model.select().exists(), model
