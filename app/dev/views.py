"""The QA kit's routes (see ``app.dev``)."""

from __future__ import annotations

import secrets

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app import middleware, settings, users
from app.carriers import ACCESS_COOKIE
from app.dev import bp, mailbox
from app.errors import render_error
from app.middleware import auth_state, client_ip, current_principal, login_required, user_agent
from app.models import LoginSession
from app.recovery import registration
from app.security import JSON_HEADER
from app.sessions import rules, store, use

# Where the stolen copy of ``replay`` is presented from: a documentation address (RFC 5737).
THIEF_ADDRESS = "198.51.100.66"
THIEF_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Gatehouse-QA-thief"
ACTIONS = {
    "expire-access": "The access token is gone: the next request rotates.",
    "idle": "The session was last active longer ago than the idle limit.",
    "max-age": "The session has reached its absolute lifetime.",
    "replay": "A stolen copy of the previous session value was presented from "
              f"{THIEF_ADDRESS}.",
}


def outbox():
    return settings.current().mail.outbox_dir


@bp.get("/mail")
def mail_page():
    return render_template("dev/mail.html", mails=mailbox.read(outbox()),
                           outbox=outbox())


@bp.get("/mail.json")
def mail_json():
    return jsonify([mail.as_json() for mail in mailbox.read(outbox(), request.args.get("to", ""))])


@bp.get("/session")
@login_required
def session_page():
    session = LoginSession.get_by_id(current_principal().session_id)
    return render_template("dev/session.html", session=session, actions=ACTIONS,
                           policy=settings.current().policy, now=settings.now())


@bp.post("/sessions/<session_id>/<action>")
def act(session_id: str, action: str):
    if action not in ACTIONS:
        abort(404)
    session = LoginSession.get_or_none(LoginSession.public_id == session_id)
    if session is None:
        abort(404)
    config = settings.current()
    at = config.clock()
    principal = auth_state().principal
    if action in ("idle", "max-age"):  # any session of the person asking
        if principal is None or principal.user_id != session.user_id:
            return render_error(409, "This action needs a session of the person asking: send "
                                     "it with the cookies of one of their browsers.",
                                code="not_this_person")
        if action == "idle":
            store.age(session.id, now=at, last_active_at=config.policy.live_since(at) - 1)
        else:
            store.age(session.id, now=at, absolute_expires_at=at - 1)
    else:
        if principal is None or principal.session_public_id != session_id:
            return render_error(409, "This action needs this browser's own session: send it "
                                     "with the browser's cookies.", code="not_this_browser")
        if action == "replay":
            _present_a_stolen_copy(session.id, at)
    response: Response
    if request.headers.get(JSON_HEADER) == "1":
        response = jsonify(session=session_id, action=action)
    else:
        flash(ACTIONS[action], "success")
        response = redirect(url_for("dev.session_page"))
    if action == "expire-access":
        response.delete_cookie(ACCESS_COOKIE, **config.cookie)
    return response


def _present_a_stolen_copy(session_id: int, at: float) -> None:
    """This browser's value is rotated (as its own next request would), the rotation aged past
    the windows that forgive a superseded value, and the previous value presented from
    elsewhere: the store ends the session for reuse, recording the thief's address."""
    config, state = settings.current(), auth_state()
    previous = middleware.carrier().presented(request).handle
    if state.issued is None:  # not rotated by this very request: rotate as the browser would
        state.issued, _ = use.rotate(previous, keys=config.keys, policy=config.policy, now=at,
                                     ip_address=client_ip(), user_agent=user_agent())
    policy = config.policy
    store.age(session_id, now=at, rotated_at=at - max(policy.grace,
                                                      policy.lost_response_window) - 1)
    try:
        use.rotate(previous, keys=config.keys, policy=config.policy, now=at,
                   ip_address=THIEF_ADDRESS, user_agent=THIEF_AGENT)
    except rules.SessionError:
        pass  # reuse detected: the session has ended, as intended


def _confirmed(user, at: float) -> None:
    if user is not None:
        registration.mark_verified(user.id, now=at)


@bp.post("/users")
def create_user():
    """A new account whose address is confirmed: ``{"email", "password"}``. A JSON body may
    choose the address (``{"email": ...}``); the password is always made here."""
    wanted = (request.get_json(silent=True) or {}).get("email")
    email = wanted if isinstance(wanted, str) else f"qa-{secrets.token_hex(6)}@example.com"
    password = secrets.token_urlsafe(18)
    config = settings.current()
    at = config.clock()
    try:
        created = users.register(email, password, hasher=config.hasher, now=at, ip=client_ip(),
                                 then=lambda user: _confirmed(user, at))
    except users.InvalidEmail as exc:
        return render_error(400, str(exc))
    if not created:
        return render_error(409, "That address already has an account.", code="taken")
    return jsonify(email=users.normalise_email(email), password=password), 201
