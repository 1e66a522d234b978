"""Device-bound sessions (DBSC) over HTTP: the offer at sign-in, registration, refresh.

A sign-in over HTTPS offers registration with a fresh challenge. A browser that registers
proves it holds a private key (in its own key store, a TPM where there is one); the session is
then bound to that key (``store.bind_key``) and from then on rotates only at ``/dbsc/refresh``,
against a signature of a fresh challenge by that key. The session cookie alone no longer
renews it anywhere (``rules.rotation_failure``), so a copy of the cookies is worth one access
token's lifetime.

Every answer here acts on the session the request's own cookies name, never on one a header
names: ``Sec-Secure-Session-Id`` only has to agree with it.
"""

from __future__ import annotations

import logging

from flask import Response, jsonify, request

from app import devicekeys, keyproofs, settings, tokens
from app.carriers import ACCESS_COOKIE
from app.middleware import auth_state, carrier, client_ip, user_agent
from app.sessions import rules, use
from app.sessions.state import SessionState

log = logging.getLogger("gatehouse.security")


def offered() -> bool:
    """Whether this request's sign-in offers registration: the setting is on, and the
    request came over HTTPS (browsers ignore DBSC on anything else)."""
    return settings.current().device_bound_sessions and request.is_secure


def offer(session_public_id: str) -> None:
    """Offer registration on this (sign-in) response, with a challenge for the new session."""
    if offered():
        config = settings.current()
        challenge = devicekeys.new_challenge_for(config.keys, session_public_id,
                                                 now=config.clock())
        auth_state().offer = keyproofs.registration_offer(challenge)


def _configuration(session_public_id: str) -> Response:
    attributes = keyproofs.cookie_attributes(settings.current().cookie)
    return jsonify(keyproofs.session_config(
        session_public_id, origin=request.host_url.rstrip("/"), cookie=ACCESS_COOKIE,
        attributes=attributes))


_CODES = {400: "bad_request", 401: "not_authenticated", 409: "conflict"}


def _refused(status: int, why: str) -> tuple[Response, int]:
    """A registration refused; why goes to the log, the browser learns only that it was."""
    log.info("DBSC %s refused: %s", request.path, why)
    return jsonify(error=_CODES[status], message="The key proof was not accepted."), status


def register() -> Response | tuple[Response, int]:
    """Bind the signed-in session to the key whose proof answers one of its challenges."""
    principal = auth_state().principal
    if principal is None:
        return _refused(401, "not signed in")
    at = settings.now()
    try:
        proof = keyproofs.read_proof(request.headers.get(keyproofs.PROOF_HEADER, ""))
    except keyproofs.InvalidProof as error:
        return _refused(400, str(error))
    if not devicekeys.may_bind(principal.session_id, proof.thumbprint):
        # Before the challenge is taken: another key cannot void one the bound key is signing.
        return _refused(409, "the session is bound to another key")
    if not devicekeys.take_challenge(principal.session_id, proof.challenge, now=at):
        return _refused(400, "not a challenge of this session, used, or expired")
    if not devicekeys.bind(principal.session_id, proof, now=at, ip_address=client_ip()):
        return _refused(409, "the session is bound to another key")
    return _configuration(principal.session_public_id)


def refresh() -> Response | tuple[Response, int]:
    """A bound session's renewal: 403 with a challenge, then, with a proof of the session's
    key over it, the session rotates (the rules of every rotation: parallel refreshes and a
    lost response converge on the same successor) and the new access cookie is set."""
    config, state = settings.current(), auth_state()
    at = config.clock()
    asked = request.headers.get(keyproofs.SESSION_ID_HEADER, "")[:64]
    handle = carrier().presented(request).handle
    session = devicekeys.session_of(config.keys, handle)
    if session is None or not tokens.hashes_equal(asked, session.public_id):
        # Not the session these cookies name (or none): that one is not ours to renew.
        return jsonify(keyproofs.ended_config(asked))
    if rules.ended(session, config.policy, at) is not None:
        state.clear = True  # as on any request with an ended session's cookies
        return jsonify(keyproofs.ended_config(session.public_id))
    if not session.key_thumbprint:  # never bound: it renews on its cookie, as before
        return jsonify(keyproofs.ended_config(session.public_id))
    proof = request.headers.get(keyproofs.PROOF_HEADER)
    if not proof:
        return _challenge(session, at)
    key = devicekeys.stored_key(session.id, session.key_thumbprint)
    try:
        answer = keyproofs.read_proof(proof, key) if key else None
    except keyproofs.InvalidProof as error:
        log.info("DBSC refresh proof refused: %s", error)
        answer = None
    if answer is None or not devicekeys.take_challenge(session.id, answer.challenge, now=at):
        return _challenge(session, at)
    try:
        state.issued, state.principal = use.rotate(
            handle, keys=config.keys, policy=config.policy, now=at, ip_address=client_ip(),
            user_agent=user_agent(), proven_key=answer.thumbprint)
    except (rules.SessionEnded, rules.SessionNotFound):
        state.clear = True
        return jsonify(keyproofs.ended_config(session.public_id))
    except rules.SessionError:  # replaced by a re-key moments ago: ask again
        return _challenge(session, at)
    return _configuration(session.public_id)


def _challenge(session: SessionState, at: float) -> tuple[Response, int]:
    challenge = devicekeys.new_challenge(settings.current().keys, session.id, now=at)
    response = jsonify(error="key_proof_required", message="Sign this challenge.")
    response.headers[keyproofs.CHALLENGE_HEADER] = keyproofs.challenge_header(
        challenge, session.public_id)
    return response, 403
