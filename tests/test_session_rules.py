"""The session rules alone: every decision checked without a database, an app or a request."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from support import fixed_keys

from app import tokens, words
from app.config import LAST_ACTIVE_RESOLUTION
from app.sessions import rules
from app.sessions.state import COLUMNS, FIELDS, SessionState

KEYS = fixed_keys("rules-test-secret-0123456789abcdefghij")
POLICY = rules.Policy(issuer="gatehouse", access_ttl=300, grace=30, lost_response_window=600,
                      idle_ttl=3600, max_age=86400)
NOW = 1_700_000_000.0
STATE = SessionState(
    id=7, public_id="session-public-id-0001", user_id=1, user_public_id="user-public-id-0000001",
    email="ada@example.com", generation=3, current_hash="h3", rotated_at=NOW - 100,
    successor_seen=True, rekeyed_at=None, rekey_generation=None, proven_at=NOW - 100,
    last_active_at=NOW - 10, absolute_expires_at=NOW + 1000, ended_at=None, end_reason=None,
    credential_epoch=2, user_epoch=2, user_epoch_reason="", last_ip_address="203.0.113.7",
    last_user_agent="Firefox", key_thumbprint="", client_id="")


def live_row(**changes) -> SessionState:
    """A session as a request with an access token finds it."""
    return dataclasses.replace(STATE, **changes)


def claims(**changes) -> tokens.AccessClaims:
    token = tokens.AccessClaims("user-public-id-0000001", "session-public-id-0001", int(NOW) - 5,
                                int(NOW) + 295, "jti", 3)
    return dataclasses.replace(token, **changes)


def family(**changes) -> SessionState:
    """A session as a rotation reads it."""
    return dataclasses.replace(STATE, last_active_at=NOW - 100, proven_at=NOW - 500,
                               **changes)


def imports_of(module) -> set[str]:
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {f"{node.module}.{alias.name}" if node.module == "app" else node.module
                 for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 for alias in node.names}
    return imported


def test_the_rules_import_nothing_but_the_pure_core():
    from app import config
    from app.sessions import state

    imported = imports_of(rules)
    assert {name for name in imported if name.startswith("app")} == {
        "app.tokens", "app.config", "app.sessions.state"}
    for module in (rules, tokens, config, state):
        outside = {name.split(".")[0] for name in imports_of(module)}
        assert not {"flask", "peewee", "werkzeug"} & outside, module


def test_a_state_is_read_by_one_column_list_in_field_order():
    assert len(COLUMNS.split(", ")) == len(FIELDS)
    assert COLUMNS.startswith("s.id, s.public_id, s.user_id, u.public_id")


@pytest.mark.parametrize(("changes", "at", "reason"), [
    ({}, NOW, None),
    # "Last active" may lag the last request by a write interval: never cut short.
    ({"last_active_at": NOW - 3600}, NOW, None),
    ({"last_active_at": NOW - 3600 - LAST_ACTIVE_RESOLUTION}, NOW, rules.IDLE_TIMEOUT),
    ({"absolute_expires_at": NOW}, NOW, rules.EXPIRED),
    # Both have run out: the absolute lifetime is the reason given.
    ({"absolute_expires_at": NOW - 1, "last_active_at": NOW - 7200}, NOW, rules.EXPIRED),
])
def test_expiry(changes, at, reason):
    assert rules.expiry(live_row(**changes), POLICY, at) == reason


def test_a_live_session_with_its_own_token_authenticates():
    assert rules.liveness_failure(live_row(), POLICY, NOW, claims()) is None


@pytest.mark.parametrize(("row", "token", "failure"), [
    (live_row(ended_at=NOW - 1, end_reason=rules.REVOKED), claims(), rules.SessionEnded),
    # A token naming another user than its session's is one only a forger could make.
    (live_row(), claims(user_id="someone-else"), rules.SessionNotFound),
    (live_row(rekey_generation=4, generation=4), claims(), rules.StaleAccessToken),
    (live_row(last_active_at=NOW - 4000), claims(), rules.SessionEnded),
    # A password changed (or all other sessions signed out) since its password was checked.
    (live_row(credential_epoch=1), claims(), rules.SessionEnded),
    # A token of the previous value after the grace window: someone else rotated.
    (live_row(generation=4, rotated_at=NOW - 31), claims(), rules.ReuseDetected),
    (live_row(generation=5, rotated_at=NOW - 1), claims(), rules.ReuseDetected),
    (live_row(generation=2), claims(), rules.SessionNotFound),  # never issued
])
def test_liveness_failures(row, token, failure):
    assert type(rules.liveness_failure(row, POLICY, NOW, token)) is failure


def test_a_token_of_the_previous_value_is_live_within_the_grace_window():
    row = live_row(generation=4, rotated_at=NOW - POLICY.grace)
    assert rules.liveness_failure(row, POLICY, NOW, claims()) is None


def test_a_credential_change_ends_with_its_own_reason():
    row = live_row(credential_epoch=1, user_epoch_reason=rules.REVOKED_OTHERS)
    failure = rules.liveness_failure(row, POLICY, NOW, claims())
    assert failure is not None and failure.reason == rules.REVOKED_OTHERS


@pytest.mark.parametrize(("row", "token_generation", "ip", "agent", "written"), [
    (live_row(), 3, "203.0.113.7", "Firefox", set()),  # nearly every request: no write
    (live_row(successor_seen=False), 3, "203.0.113.7", "Firefox", {"successor_seen"}),
    (live_row(successor_seen=False), 2, "203.0.113.7", "Firefox", set()),
    (live_row(last_active_at=NOW - 60), 3, "203.0.113.7", "Firefox", {"last_active_at"}),
    (live_row(), 3, "198.51.100.9", "Firefox", {"last_ip_address"}),
    (live_row(), 3, "203.0.113.7", "Safari", {"last_user_agent"}),
])
def test_a_request_records_only_what_changed(row, token_generation, ip, agent, written):
    proves = token_generation == row.generation
    assert set(rules.use_to_record(row, proves, NOW, ip, agent)) == written


def test_an_ended_session_keeps_the_reason_it_ended_with():
    failure = rules.liveness_failure(live_row(ended_at=NOW - 1, end_reason=rules.REVOKED),
                                     POLICY, NOW)
    assert failure is not None and failure.reason == rules.REVOKED


@pytest.mark.parametrize(("at", "due"), [(NOW - 10, False), (NOW - 60, True)])
def test_activity_is_written_at_most_once_a_minute(at, due):
    assert rules.activity_due(at, NOW) is due


def test_the_current_value_rotates():
    assert rules.rotation_failure(family(), 3, "h4", POLICY, NOW) is None


@pytest.mark.parametrize("changes", [
    {"rotated_at": NOW - 10},  # inside the grace window
    {"rotated_at": NOW - 600, "successor_seen": False},  # the response may have been lost
])
def test_the_predecessor_is_forgiven(changes):
    assert rules.rotation_failure(family(**changes), 2, "h3", POLICY, NOW) is None


@pytest.mark.parametrize(("generation", "successor_hash", "changes"), [
    (2, "h3", {"rotated_at": NOW - 1000}),  # after the grace, its successor was proven
    (2, "h3", {"rotated_at": NOW - 601, "successor_seen": False}),  # lost-response window over
    (1, "h2", {"rotated_at": NOW - 10}),  # older than the predecessor
    (2, "not-h3", {"rotated_at": NOW - 10}),  # across a re-key: never forgiven
])
def test_other_superseded_values_are_reuse(generation, successor_hash, changes):
    failure = rules.rotation_failure(family(**changes), generation, successor_hash, POLICY,
                                     NOW)
    assert isinstance(failure, rules.ReuseDetected) and failure.reason == rules.REUSE_DETECTED


def test_a_value_replaced_by_a_recent_rekey_is_refused_without_alarm():
    session = family(rekeyed_at=NOW - 5, rekey_generation=3, current_hash="random")
    assert isinstance(rules.rotation_failure(session, 2, "h3", POLICY, NOW), rules.StaleHandle)
    later = rules.rotation_failure(session, 2, "h3", POLICY, NOW + POLICY.grace)
    assert isinstance(later, rules.ReuseDetected)


def test_a_session_older_than_a_credential_change_does_not_rotate():
    failure = rules.rotation_failure(family(credential_epoch=1), 3, "h4", POLICY, NOW)
    assert isinstance(failure, rules.SessionEnded) and failure.reason == rules.PASSWORD_CHANGED


def test_an_expired_session_does_not_rotate():
    failure = rules.rotation_failure(family(absolute_expires_at=NOW), 3, "h4", POLICY, NOW)
    assert isinstance(failure, rules.SessionEnded) and failure.reason == rules.EXPIRED


def test_the_rotated_principal_is_the_sessions_person():
    principal = family().principal
    assert (principal.user_public_id, principal.email) == ("user-public-id-0000001",
                                                           "ada@example.com")
    assert (principal.session_id, principal.session_public_id) == (7, "session-public-id-0001")


def test_nothing_issued_outlives_the_session():
    session = family(absolute_expires_at=NOW + 100)
    issued = rules.issue(KEYS, POLICY, public_id=session.public_id,
                         absolute_expires_at=session.absolute_expires_at,
                         user_public_id="user-public-id-0000001", handle="handle", generation=4,
                         now=NOW)
    assert issued.access_max_age == issued.handle_max_age == 100
    decoded = tokens.decode_access(KEYS, issued.access_token, issuer="gatehouse", now=NOW)
    assert decoded.expires_at <= session.absolute_expires_at
    assert decoded.generation == 4


def test_the_session_cookie_outlives_the_idle_limit_by_an_access_token():
    """A browser using its access token is active without presenting the session value."""
    issued = rules.issue(KEYS, POLICY, public_id="session-public-id-0001",
                         absolute_expires_at=NOW + 86400, user_public_id="user-public-id-0000001",
                         handle="handle", generation=3, now=NOW)
    assert issued.handle_max_age == (POLICY.idle_ttl + POLICY.access_ttl
                                     + LAST_ACTIVE_RESOLUTION)


def test_every_end_reason_has_its_words():
    for reason in (rules.SIGNED_OUT, rules.REVOKED, rules.REVOKED_OTHERS,
                   rules.PASSWORD_CHANGED, rules.REUSE_DETECTED, rules.IDLE_TIMEOUT,
                   rules.EXPIRED, rules.PASSWORD_RESET, rules.NOT_ME, rules.EMAIL_RESTORED,
                   rules.ACCOUNT_DELETED, rules.SESSION_LIMIT, rules.ADMIN):
        said = words.end_reason(reason)
        assert said is not words.UNKNOWN_END and said.label and said.message and said.ended_by
    # Someone else had the session (a copy of its cookie, a sign-in its owner disowned, a
    # change of address its owner undid), or someone else ended it (an administrator).
    assert [r for r, w in words.END_REASONS.items() if w.alert] == [
        rules.REUSE_DETECTED, rules.NOT_ME, rules.EMAIL_RESTORED, rules.ADMIN]
    assert words.end_reason("from a later version") is words.UNKNOWN_END


def test_reuse_is_told_in_one_plain_wording_without_jargon():
    said = words.end_reason(rules.REUSE_DETECTED)
    assert said.label == words.USED_TWICE
    for text in (said.label, said.message, said.explanation):
        assert "token" not in text.lower() and "sign-in cookie was used" in text
    assert "change your password" in said.message and "{address}" in said.explanation


def test_a_bound_session_rotates_only_with_its_key():
    bound = family(key_thumbprint="thumb")
    assert rules.rotation_failure(bound, 3, "h4", POLICY, NOW, proven_key="thumb") is None
    for key in ("", "another-key"):
        failure = rules.rotation_failure(bound, 3, "h4", POLICY, NOW, proven_key=key)
        assert isinstance(failure, rules.KeyProofMissing)
        assert not isinstance(failure, rules.SessionEnded)  # refused; nothing is ended


def test_without_the_key_not_even_an_old_value_ends_a_bound_session():
    """Reuse detection would end the owner's session; a copy without the key must not."""
    bound = family(key_thumbprint="thumb", rotated_at=NOW - 1000)
    assert isinstance(rules.rotation_failure(bound, 1, "h2", POLICY, NOW),
                      rules.KeyProofMissing)
    with_key = rules.rotation_failure(bound, 1, "h2", POLICY, NOW, proven_key="thumb")
    assert isinstance(with_key, rules.ReuseDetected)  # the key holder's own old value: reuse


def test_an_ended_bound_session_says_it_ended():
    ended = family(key_thumbprint="thumb", ended_at=NOW - 1, end_reason=rules.REVOKED)
    failure = rules.rotation_failure(ended, 3, "h4", POLICY, NOW)
    assert isinstance(failure, rules.SessionEnded) and failure.reason == rules.REVOKED


def test_an_older_access_token_of_a_bound_session_is_a_copy_not_reuse():
    """Only the key's holder rotates a bound session, so an older token in use is a copy of
    it: refused without ending the session (unbound, the same token is reuse)."""
    rotated = live_row(rotated_at=NOW - 100)
    bound = dataclasses.replace(rotated, key_thumbprint="thumb")
    for generation in (1, 2):  # two renewals old; one renewal old after the grace window
        assert isinstance(rules.liveness_failure(rotated, POLICY, NOW,
                                                 claims(generation=generation)),
                          rules.ReuseDetected)
        failure = rules.liveness_failure(bound, POLICY, NOW, claims(generation=generation))
        assert isinstance(failure, rules.KeyProofMissing) and failure.reason == "key_missing"
    within_grace = dataclasses.replace(bound, rotated_at=NOW - 10)
    assert rules.liveness_failure(within_grace, POLICY, NOW, claims(generation=2)) is None
    assert rules.liveness_failure(bound, POLICY, NOW, claims()) is None


def test_a_sessions_value_works_only_for_its_holder():
    """An app's value is no browser's cookie, a browser's none of an app's, nor another app's."""
    browser_session, app_session = family(), family(client_id="notes")
    assert rules.holder_failure(browser_session, "") is None
    assert rules.holder_failure(app_session, "notes") is None
    for session, presenter in ((app_session, ""), (browser_session, "notes"),
                               (app_session, "other")):
        assert isinstance(rules.holder_failure(session, presenter), rules.SessionNotFound)
