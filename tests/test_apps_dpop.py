"""DPoP (RFC 9449): proofs checked against the RFC's list, each used once across workers, and
an app's tokens bound to its key: a copy without the key is refused, recorded, ends nothing."""

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from test_apps_oauth import LOOPBACK, add_client, authorize_query, consent, pkce

from app import audit, dpop, signing
from app.models import LoginSession, SecurityEvent

TOKEN_URL = "http://localhost/oauth/token"
ME_URL = "http://localhost/api/me"


class Key:
    """An app's key pair, as its keychain holds it, and the proofs it signs."""

    def __init__(self, private=None, alg="ES256"):
        self.private = private or ec.generate_private_key(ec.SECP256R1())
        self.alg = alg
        self.jwk = jwt.algorithms.get_default_algorithms()[alg].to_jwk(
            self.private.public_key(), as_dict=True)

    @property
    def thumbprint(self):
        return signing.thumbprint(self.jwk)

    def proof(self, method, url, *, access_token=None, now=None, header=None, **claims):
        body = {"htm": method, "htu": url, "iat": int(now if now is not None else time.time()),
                "jti": uuid.uuid4().hex}
        if access_token is not None:
            body["ath"] = dpop.access_token_hash(access_token)
        body.update(claims)
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.private,
                          algorithm=self.alg, headers=headers)


NOW = 1_800_000_000


# -- the proof, against the RFC's checks ---------------------------------------------------

def test_a_valid_proof_gives_its_keys_thumbprint():
    key = Key()
    proof = dpop.verify(key.proof("POST", TOKEN_URL, now=NOW), method="POST", url=TOKEN_URL,
                        now=NOW + 30)
    assert proof.key_thumbprint == key.thumbprint and proof.issued_at == NOW


def test_an_rsa_proof_and_a_query_on_the_url_are_fine():
    key = Key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "PS256")
    dpop.verify(key.proof("GET", ME_URL + "?x=1", now=NOW, access_token="t"), method="GET",
                url=ME_URL, now=NOW, access_token="t")


def hostile(key):
    other = Key()
    unsigned = jwt.encode({"htm": "POST", "htu": TOKEN_URL, "iat": NOW, "jti": "j"}, None,
                          algorithm="none", headers={"typ": "dpop+jwt", "jwk": key.jwk})
    hs = jwt.encode({"htm": "POST", "htu": TOKEN_URL, "iat": NOW, "jti": "j"}, "k" * 32,
                    algorithm="HS256", headers={"typ": "dpop+jwt", "jwk": key.jwk})
    genuine = key.proof("POST", TOKEN_URL, now=NOW)
    head, body, _ = genuine.split(".")
    private_jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.private, as_dict=True)
    return {
        "typ JWT": key.proof("POST", TOKEN_URL, now=NOW, header={"typ": "JWT"}),
        "alg none": unsigned,
        "alg HS256": hs,
        "private key in the jwk": key.proof("POST", TOKEN_URL, now=NOW,
                                            header={"jwk": private_jwk}),
        "symmetric jwk": key.proof("POST", TOKEN_URL, now=NOW,
                                   header={"jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
        "no jwk": key.proof("POST", TOKEN_URL, now=NOW, header={"jwk": None}),
        "signed by another key": f"{head}.{body}.{other.proof('POST', TOKEN_URL).split('.')[2]}",
        "htm GET": key.proof("GET", TOKEN_URL, now=NOW),
        "htu of another server": key.proof("POST", "https://evil.example/oauth/token", now=NOW),
        "htu of another path": key.proof("POST", "http://localhost/oauth/revoke", now=NOW),
        "iat 61 s old": key.proof("POST", TOKEN_URL, now=NOW - 61),
        "iat 61 s ahead": key.proof("POST", TOKEN_URL, now=NOW + 61),
        "iat a string": key.proof("POST", TOKEN_URL, now=NOW, iat=str(NOW)),
        "no jti": key.proof("POST", TOKEN_URL, now=NOW, jti=None),
        "jti too long": key.proof("POST", TOKEN_URL, now=NOW, jti="j" * 300),
        "no htu": key.proof("POST", TOKEN_URL, now=NOW, htu=None),
        "two segments": ".".join(genuine.split(".")[:2]),
        "garbage": "not.a.proof",
        "oversized": genuine + "A" * 5000,
    }


@pytest.mark.parametrize("name", sorted(hostile(Key())))
def test_a_hostile_proof_is_refused(name):
    key = Key()
    with pytest.raises(dpop.InvalidProof):
        dpop.verify(hostile(key)[name], method="POST", url=TOKEN_URL, now=NOW)


@pytest.mark.parametrize("ath", ["missing", "of another token"])
def test_beside_an_access_token_the_proof_carries_its_hash(ath):
    key = Key()
    proof = key.proof("GET", ME_URL, now=NOW,
                      access_token=None if ath == "missing" else "another token")
    with pytest.raises(dpop.InvalidProof):
        dpop.verify(proof, method="GET", url=ME_URL, now=NOW, access_token="the token")


# -- the token endpoint and the API ----------------------------------------------------------

def dpop_sign_in(app, person, client_id, key=None):
    verifier, challenge = pkce()
    params = authorize_query(client_id, challenge)
    _, answer = consent(person, params)
    headers = {"DPoP": key.proof("POST", TOKEN_URL)} if key else {}
    return app.test_client(use_cookies=False).post("/oauth/token", headers=headers, data=dict(
        grant_type="authorization_code", code=answer["code"], redirect_uri=params["redirect_uri"],
        code_verifier=verifier, client_id=client_id))


def call(app, token, key=None, scheme="DPoP", proof=None, url=ME_URL):
    headers = {"Authorization": f"{scheme} {token}"}
    if proof or key:
        headers["DPoP"] = proof or key.proof("GET", url, access_token=token)
    return app.test_client(use_cookies=False).get("/api/me", headers=headers)


def dpop_refresh(app, client_id, refresh_token, key=None, **extra):
    headers = {"DPoP": key.proof("POST", TOKEN_URL)} if key else {}
    return app.test_client(use_cookies=False).post(
        "/oauth/token", headers=headers, data={"grant_type": "refresh_token",
                                               "refresh_token": refresh_token,
                                               "client_id": client_id}, **extra)


@pytest.fixture
def bound(app, ada):
    """An app registered --dpop required, signed in with its key."""
    client_id = add_client_dpop(app, "required")
    key = Key()
    body = dpop_sign_in(app, ada, client_id, key).get_json()
    return client_id, key, body


def add_client_dpop(app, mode):
    result = app.test_cli_runner().invoke(args=["clients", "add", "Notes", "--redirect-uri",
                                                LOOPBACK, "--dpop", mode])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_a_required_app_without_a_proof_gets_no_tokens(app, ada):
    client_id = add_client_dpop(app, "required")
    response = dpop_sign_in(app, ada, client_id)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_dpop_proof"


def test_bound_tokens_carry_the_keys_thumbprint_and_need_its_proofs(app, bound):
    client_id, key, body = bound
    assert body["token_type"] == "DPoP"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": key.thumbprint} and claims["client_id"] == client_id
    assert LoginSession.get(LoginSession.client_id == client_id).key_thumbprint == \
        key.thumbprint
    assert call(app, body["access_token"], key).status_code == 200
    assert call(app, body["access_token"], scheme="Bearer").status_code == 401
    refused = call(app, body["access_token"])  # no proof
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'DPoP error="invalid_token"'
    assert call(app, body["access_token"], Key()).status_code == 401  # another key
    assert call(app, body["access_token"], key, scheme="Bearer").status_code == 401
    used = key.proof("GET", ME_URL, access_token=body["access_token"])
    assert call(app, body["access_token"], proof=used).status_code == 200
    assert call(app, body["access_token"], proof=used).status_code == 401  # replayed


def test_a_proof_used_on_one_instance_is_refused_on_another(make_app, bound, app):
    _, key, body = bound
    other = make_app()
    used = key.proof("GET", ME_URL, access_token=body["access_token"])
    assert call(app, body["access_token"], proof=used).status_code == 200
    assert call(other, body["access_token"], proof=used).status_code == 401


def test_the_refresh_token_works_only_with_its_key(app, bound, clock):
    client_id, key, body = bound
    thief = dpop_refresh(app, client_id, body["refresh_token"],
                         environ_base={"REMOTE_ADDR": "203.0.113.66"})
    assert thief.status_code == 400 and thief.get_json()["error"] == "invalid_dpop_proof"
    with_their_key = dpop_refresh(app, client_id, body["refresh_token"], Key())
    assert with_their_key.status_code == 400
    assert with_their_key.get_json()["error"] == "invalid_grant"
    session = LoginSession.get(LoginSession.client_id == client_id)
    assert session.ended_at is None and session.refused_uses == 2  # refused, nothing ended
    assert session.last_refused_ip in ("203.0.113.66", "127.0.0.1")
    assert SecurityEvent.select().where(SecurityEvent.kind == audit.KEY_MISSING).count() == 2
    renewed = dpop_refresh(app, client_id, body["refresh_token"], key)
    assert renewed.status_code == 200 and renewed.get_json()["token_type"] == "DPoP"
    assert call(app, renewed.get_json()["access_token"], key).status_code == 200


def test_an_optional_app_without_a_proof_gets_bearer_tokens(app, ada):
    client_id = add_client_dpop(app, "optional")
    plain = dpop_sign_in(app, ada, client_id).get_json()
    assert plain["token_type"] == "Bearer"
    assert call(app, plain["access_token"], scheme="Bearer").status_code == 200
    key = Key()
    bound_body = dpop_sign_in(app, ada, client_id, key).get_json()
    assert bound_body["token_type"] == "DPoP"
    assert call(app, bound_body["access_token"], key).status_code == 200


def test_a_replayed_proof_at_the_token_endpoint_is_refused(app, ada):
    client_id = add_client_dpop(app, "required")
    key = Key()
    verifier, challenge = pkce()
    params = authorize_query(client_id, challenge)
    _, answer = consent(ada, params)
    proof = key.proof("POST", TOKEN_URL)
    form = dict(grant_type="authorization_code", code=answer["code"],
                redirect_uri=params["redirect_uri"], code_verifier=verifier, client_id=client_id)
    first = app.test_client(use_cookies=False).post("/oauth/token", headers={"DPoP": proof},
                                                    data=form)
    assert first.status_code == 200
    body = first.get_json()
    again = app.test_client(use_cookies=False).post(
        "/oauth/token", headers={"DPoP": proof}, data={
            "grant_type": "refresh_token", "refresh_token": body["refresh_token"],
            "client_id": client_id})
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_dpop_proof"


def test_an_app_without_dpop_ignores_a_proof(app, ada):
    client_id = add_client(app, LOOPBACK)
    body = dpop_sign_in(app, ada, client_id, Key()).get_json()
    assert body["token_type"] == "Bearer"

