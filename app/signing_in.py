"""What views ask of the signed-in state: sign in, sign out, end sessions, prove it again.

Each changes this request's ``AuthState``, which the middleware turns into credentials on the
response; the session operations themselves are the store's.
"""

from __future__ import annotations

from typing import Any

from flask import request, url_for
from flask import session as cookie_session  # Flask's signed cookie: CSRF secret and flashes
from werkzeug.exceptions import Forbidden

from app import binding, devices, passkeys, settings, tokens, twostep, users, words
from app.middleware import (
    auth_state,
    client_ip,
    current_principal,
    device_hash,
    device_id,
    user_agent,
)
from app.models import Passkey, PendingSignIn, User
from app.sessions import rules, store
from app.sessions.state import Method, Principal


class AccountLocked(Forbidden):
    """An administrator locked the account: no session starts, by any method."""

    description = words.LOCKED_BY_ADMIN


def sign_in(user: User, method: Method = Method.PASSWORD) -> None:
    """Start a new session for ``user``, who proved who they are by ``method``; whatever
    this browser held before is discarded. AccountLocked when the account is locked."""
    if user.locked_at is not None:
        raise AccountLocked()
    state, config = auth_state(), settings.current()
    at = config.clock()
    if state.principal is not None:
        try:
            store.revoke(state.principal.session_public_id, user_id=state.principal.user_id,
                         reason=rules.SIGNED_OUT, now=at, ip_address=client_ip())
        except rules.SessionNotFound:
            pass  # ended by this very request (a password reset ends every session)
    cookie_session.clear()  # a planted CSRF secret or flash does not survive sign-in
    device = device_id()
    if not device:
        device = state.new_device = tokens.new_handle()
    known = devices.is_known(user.id, device)
    state.issued = store.start(user, keys=config.keys, policy=config.policy, now=at,
                               user_agent=user_agent(), ip_address=client_ip(),
                               new_device=not known, device_hash=device_hash(), method=method)
    devices.remember(user.id, device, at, user_agent())
    state.clear, state.principal = False, None
    binding.offer(state.issued.session_public_id)


def sign_in_or_hold(user: User, method: Method, target: str) -> str:
    """Sign ``user`` in, or, when their account has two-step sign-in and ``method`` is not
    already two factors, hold the sign-in until a code is given; where to go next."""
    if method == Method.PASSKEY or not twostep.is_on(user.id):
        sign_in(user, method)
        return target
    cookie_session[PENDING] = twostep.hold(user, method, target, now=settings.now())
    return url_for("auth.second_step")


PENDING = "two_step"  # Flask's cookie: the handle of this browser's sign-in waiting for a code
CHALLENGES = "webauthn"  # ... and of its WebAuthn challenge


def held_sign_in() -> PendingSignIn | None:
    handle = cookie_session.get(PENDING)
    return twostep.held(handle, settings.now()) if isinstance(handle, str) else None


def relying_party() -> passkeys.RelyingParty | None:
    """Who passkeys are for: the public URL's host. None when none is configured."""
    return passkeys.RelyingParty.of(settings.current().public_url)


def on_relying_party() -> bool:
    """Whether this page was opened at the public URL's origin, where passkeys work (a browser
    refuses them on an IP address such as 127.0.0.1)."""
    rp = relying_party()
    return rp is not None and request.host_url.rstrip("/") == rp.origin


def passkey_challenge(purpose: str) -> str:
    """A fresh challenge for this browser (replacing any earlier one); the options as JSON."""
    rp = relying_party()
    if rp is None:
        raise passkeys.PasskeyRefused("no public URL: passkeys are not configured")
    principal = current_principal() if purpose != passkeys.SIGN_IN else None
    handle, options = passkeys.begin(
        purpose, rp, now=settings.now(),
        user=User.get_by_id(principal.user_id) if principal else None,
        session_id=principal.session_id if principal else None)
    cookie_session[CHALLENGES] = handle
    return options


def passkey_answer(credential: str, purpose: str) -> Passkey:
    """The passkey that answered this browser's challenge for ``purpose`` (for a
    re-authentication, one of the signed-in person's); PasskeyRefused or Throttled."""
    rp, handle = relying_party(), cookie_session.pop(CHALLENGES, None)
    if rp is None or not isinstance(handle, str):
        raise passkeys.PasskeyRefused("no challenge was issued to this browser")
    config = settings.current()
    principal = current_principal() if purpose != passkeys.SIGN_IN else None
    return passkeys.authenticate(
        handle, credential, rp, purpose=purpose, limits=config.throttles, now=config.clock(),
        ip=client_ip(), user_id=principal.user_id if principal else None,
        session_id=principal.session_id if principal else None)


def add_passkey(credential: str, name: str) -> Passkey:
    """Store the passkey this browser just made for the signed-in person."""
    rp, handle = relying_party(), cookie_session.pop(CHALLENGES, None)
    if rp is None or not isinstance(handle, str):
        raise passkeys.PasskeyRefused("no challenge was issued to this browser")
    principal = current_principal()
    return passkeys.register(handle, credential, rp, user_id=principal.user_id,
                             session_id=principal.session_id, name=name, now=settings.now(),
                             ip=client_ip())


def origin() -> dict[str, Any]:
    """When, from which address and with which browser this request came: what a mail it
    causes says about it."""
    return {"now": settings.now(), "ip": client_ip(), "user_agent": user_agent()}


def sign_out() -> None:
    """End this browser's session and clear its credentials; nothing is re-set on this
    response."""
    state = auth_state()
    if state.principal is not None:
        store.revoke(state.principal.session_public_id, user_id=state.principal.user_id,
                     reason=rules.SIGNED_OUT, now=settings.now(), ip_address=client_ip())
    if not state.bearer:  # an app's call has no cookie of any kind to clear
        cookie_session.clear()
    state.principal, state.issued, state.clear = None, None, True


def end_session(session_public_id: str) -> bool:
    """End one of the signed-in person's sessions, from this one; True when it was this very
    session, which is then signed out like ``sign_out``. SessionNotFound for someone else's
    session or one already ended."""
    principal = current_principal()
    if session_public_id == principal.session_public_id:
        sign_out()
        return True
    store.revoke(session_public_id, user_id=principal.user_id, reason=rules.REVOKED,
                 now=settings.now(), ip_address=client_ip(), actor=principal.session_public_id)
    return False


def end_other_sessions(reason: str) -> store.Counted:
    """End every other session of the signed-in person and re-key this one, so that a copy of
    this browser's credentials is cut off too; how many ended, on how many devices. A session
    bound to a key gets no new credentials here (cookies alone, a copy's too, asked for this):
    its access cookie goes, and the browser renews it with a proof of the key."""
    state, principal, config = auth_state(), current_principal(), settings.current()
    at = config.clock()
    ended = store.revoke_all(principal.user_id, reason=reason, now=at,
                             keep=principal.session_id, ip_address=client_ip(),
                             actor=principal.session_public_id)
    state.issued = store.rekey(principal, keys=config.keys, policy=config.policy, now=at)
    state.renew = state.issued is None
    return ended


def end_every_session() -> store.Counted:
    """Sign out everywhere, this browser too: every other session ends as by "sign out all
    other sessions" (the credential epoch moves on), then this one as by signing out."""
    principal = current_principal()
    ended = store.revoke_all(principal.user_id, reason=rules.REVOKED_OTHERS, now=settings.now(),
                             keep=principal.session_id, ip_address=client_ip(),
                             actor=principal.session_public_id)
    sign_out()
    return ended


def forget_this_device() -> int:
    """Sign this browser out of the account, with every other session it has there, and
    forget it: its name goes, and its next sign-in is announced like a stranger's (a
    computer that is not yours). How many other sessions of it ended."""
    principal, device = current_principal(), device_hash()
    sign_out()
    devices.forget(principal.user_id, device)
    return store.revoke_device(principal.user_id, device, reason=rules.SIGNED_OUT,
                               now=settings.now(), ip_address=client_ip())


def forget_deleted() -> None:
    """This browser's account was deleted (its session with it): clear its credentials, as
    signing out does, with nothing left to end."""
    state = auth_state()
    cookie_session.clear()
    state.principal, state.issued, state.clear = None, None, True


def recently_proven(principal: Principal | None = None) -> bool:
    """Whether the signed-in person proved who they are (by any method) within the
    re-authentication window: sensitive actions ask again once it has passed."""
    config = settings.current()
    principal = principal or current_principal()
    return config.clock() - principal.proven_at <= config.reauth_window


def proven_again(method: Method) -> None:
    """The signed-in person has just proved who they are again, by ``method``."""
    store.proven_again(current_principal().session_id, method=method, now=settings.now(),
                       ip_address=client_ip())


def confirm_password(password: str, *, failure: str) -> User | None:
    """The signed-in person, if ``password`` is theirs. Attempts count against the sign-in
    throttles, and this browser is judged by its own attempts when the account knows it; a
    wrong one is recorded as ``failure`` (where it was typed: the history tells it from a
    failed sign-in)."""
    config = settings.current()
    return users.verify_current(current_principal().user_id, password, hasher=config.hasher,
                                limits=config.throttles, now=config.clock(), ip=client_ip(),
                                device_id=device_id(), failure=failure)
