"""The pure token core, with ``now`` passed in."""

import jwt
import pytest
from support import fixed_keys

from app import tokens

KEYS = fixed_keys("x" * 48)
SIGNER = KEYS.ring_source.ring(0).signer(0)
NOW = 1_800_000_000
U1, S1 = "u" * 21 + "1", "s" * 21 + "1"  # the shape of public ids (22 URL-safe characters)


def issue(**overrides):
    values = dict(issuer="gatehouse", user_id=U1, session_id=S1, generation=0, now=NOW,
                  expires_at=NOW + 300)
    values.update(overrides)
    return tokens.encode_access(KEYS, **values)


def test_round_trip():
    claims = tokens.decode_access(KEYS, issue(), issuer="gatehouse", now=NOW + 10)
    assert (claims.user_id, claims.session_id, claims.expires_at) == (U1, S1, NOW + 300)


@pytest.mark.parametrize("now, valid", [
    (NOW + 299, True),
    (NOW + 300 + tokens.CLOCK_LEEWAY - 1, True),   # small skew between instances tolerated
    (NOW + 300 + tokens.CLOCK_LEEWAY, False),
    (NOW - tokens.CLOCK_LEEWAY, True),
    (NOW - tokens.CLOCK_LEEWAY - 1, False),        # issued in the future
])
def test_expiry_and_issue_time_against_the_callers_clock(now, valid):
    token = issue()
    if valid:
        tokens.decode_access(KEYS, token, issuer="gatehouse", now=now)
    else:
        with pytest.raises(tokens.InvalidAccessToken):
            tokens.decode_access(KEYS, token, issuer="gatehouse", now=now)


def test_another_key_or_issuer_is_refused():
    other = fixed_keys("y" * 48)
    with pytest.raises(tokens.InvalidAccessToken):
        tokens.decode_access(other, issue(), issuer="gatehouse", now=NOW)
    with pytest.raises(tokens.InvalidAccessToken):
        tokens.decode_access(KEYS, issue(issuer="elsewhere"), issuer="gatehouse", now=NOW)


def test_a_jwt_without_the_access_token_type_is_refused():
    claims = {"iss": "gatehouse", "aud": "gatehouse", "sub": "u", "sid": "s", "iat": NOW,
              "exp": NOW + 60, "jti": "j"}
    token = jwt.encode(claims, SIGNER.private, algorithm="ES256",
                       headers={"kid": SIGNER.kid})  # typ: JWT
    with pytest.raises(tokens.InvalidAccessToken):
        tokens.decode_access(KEYS, token, issuer="gatehouse", now=NOW)


def test_successor_is_deterministic_and_unrelated_to_the_refresh_token():
    handle = tokens.new_handle()
    assert tokens.successor_handle(KEYS, handle) == tokens.successor_handle(KEYS, handle)
    assert tokens.successor_handle(KEYS, handle) != handle
    assert tokens.refresh_token(KEYS, handle) not in (handle, tokens.successor_handle(KEYS, handle))
    other = tokens.Keys.derive("y" * 48)
    assert tokens.successor_handle(other, handle) != tokens.successor_handle(KEYS, handle)


def test_handles_and_ids_are_long_and_random():
    handles = {tokens.new_handle() for _ in range(100)}
    assert len(handles) == 100 and all(len(h) >= 43 for h in handles)  # 256 bits
    assert all(len(tokens.new_public_id()) >= 22 for _ in range(10))    # 128 bits


def test_cache_rechecks_expiry_on_every_hit():
    cache = tokens.VerifiedTokenCache(size=2)
    token = issue()
    assert cache.decode(KEYS, token, issuer="gatehouse", now=NOW).session_id == S1
    with pytest.raises(tokens.InvalidAccessToken):
        cache.decode(KEYS, token, issuer="gatehouse", now=NOW + 400)


def test_cache_is_bounded(monkeypatch):
    """It remembers the newest tokens only: the oldest is verified again."""
    cache = tokens.VerifiedTokenCache(size=2)
    issued = [issue(session_id=f"{S1[:-1]}{n}") for n in range(5)]
    verified, decode = [], tokens.decode_access
    monkeypatch.setattr(tokens, "decode_access",
                        lambda keys, token, **kw: verified.append(token) or decode(keys, token,
                                                                                   **kw))
    for token in issued + issued[-2:]:
        cache.decode(KEYS, token, issuer="gatehouse", now=NOW)
    assert verified == issued
    cache.decode(KEYS, issued[0], issuer="gatehouse", now=NOW)
    assert verified == [*issued, issued[0]]


@pytest.mark.parametrize("nbf", ["soon", None, [1], {"t": 1}, 1.5e400, True])
def test_a_signed_token_with_a_malformed_nbf_is_refused_not_an_error(nbf):
    """A valid signature over a non-numeric ``nbf`` (only a holder of the key could make one,
    but the verifier must not raise anything but InvalidAccessToken for it)."""
    claims = jwt.decode(issue(), options={"verify_signature": False})
    token = jwt.encode({**claims, "nbf": nbf}, SIGNER.private, algorithm=tokens.ALGORITHM,
                       headers={"typ": tokens.TOKEN_TYPE, "kid": SIGNER.kid})
    with pytest.raises(tokens.InvalidAccessToken):
        tokens.decode_access(KEYS, token, issuer="gatehouse", now=NOW)


@pytest.mark.parametrize("claim, value", [
    ("session_id", S1[:-1] + "\x00"), ("session_id", "s1"), ("user_id", "\x00" * 22),
    ("user_id", "ü" * 22), ("session_id", S1 + "A"),
])
def test_a_signed_token_whose_ids_are_not_public_ids_is_refused(claim, value):
    """Validly signed, yet its ``sid`` or ``sub`` is no id this server makes: refused before
    any lookup (a NUL in ``sid`` once reached PostgreSQL and answered 500)."""
    with pytest.raises(tokens.InvalidAccessToken):
        tokens.decode_access(KEYS, issue(**{claim: value}), issuer="gatehouse", now=NOW)
