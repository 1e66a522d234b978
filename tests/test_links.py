"""Single-use link tokens: only a hash stored, expiry, used once, unknown when altered."""

from __future__ import annotations

import pytest
from support import register

from app import links, tokens
from app.models import LinkToken, User


@pytest.fixture
def user_id(client):
    register(client)
    return User.get().id


def test_only_the_hash_is_stored(user_id, clock):
    token = links.issue(links.RESET, user_id, ttl=60, now=clock())
    row = LinkToken.get()
    assert row.token_hash == tokens.token_hash(token) and token not in row.token_hash
    assert len(token) >= 43  # 32 random bytes


def test_a_token_is_used_once(user_id, clock):
    token = links.issue(links.RESET, user_id, ttl=60, now=clock())
    assert links.use(token, links.RESET, now=clock()).user_id == user_id
    with pytest.raises(links.LinkUsed):
        links.use(token, links.RESET, now=clock())


def test_a_token_expires(user_id, clock):
    token = links.issue(links.RESET, user_id, ttl=60, now=clock())
    clock.advance(60)
    with pytest.raises(links.LinkExpired):
        links.check(token, links.RESET, now=clock())


@pytest.mark.parametrize("change", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: t[:-1], lambda t: t + "x", lambda t: "", lambda t: t * 3, lambda t: t + "\x00",
])
def test_an_altered_token_is_unknown(user_id, clock, change):
    token = links.issue(links.VERIFY, user_id, ttl=60, now=clock())
    with pytest.raises(links.LinkError) as refused:
        links.check(change(token), links.VERIFY, now=clock())
    assert type(refused.value) is links.LinkError


def test_a_token_serves_only_its_purpose(user_id, clock):
    token = links.issue(links.VERIFY, user_id, ttl=60, now=clock())
    with pytest.raises(links.LinkError):
        links.use(token, links.RESET, now=clock())


def test_retire_ends_every_unused_token_of_a_kind(user_id, clock):
    first = links.issue(links.RESET, user_id, ttl=60, now=clock())
    second = links.issue(links.RESET, user_id, ttl=60, now=clock())
    links.retire(user_id, links.RESET, now=clock())
    for token in (first, second):
        with pytest.raises(links.LinkUsed):
            links.check(token, links.RESET, now=clock())
