"""Asking the signed-in person to prove who they are again before a sensitive action: once, on
a page of its own, and only when the action needs it and their last proof is older than
``GATEHOUSE_REAUTH_WINDOW``.

The page's form posts back to the action's own address with the action's fields carried along
(under a fresh CSRF token) plus ``password``, so that the right password performs the action at
once. A JSON call sends ``{"password": ...}`` in its body instead and is answered 403
``reauthentication_required`` until it does. A password that is sent is always checked, even
when none was needed (inside the window, or signing out this very device): a wrong one is
refused, never ignored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField

from app import audit, passkeys, settings, signing_in
from app.errors import MalformedRequest, ReauthenticationRequired
from app.forms import PASSWORD, well_formed
from app.middleware import current_principal
from app.security import is_api_request
from app.sessions.state import Method

WRONG_PASSWORD = "That password is not right."
NOT_AN_OBJECT = ("Send the body as a JSON object, such as {\"password\": \"...\"}, with "
                 "Content-Type: application/json.")
NOT_A_STRING = "The password must be a string."
PASSKEY_REFUSED = "That passkey was not accepted. Try again, or enter your password."
# A fresh token; the password is typed, the passkey's answer made anew.
NOT_CARRIED = frozenset({"csrf_token", "password", "passkey"})


class ReauthForm(FlaskForm):
    """The "Confirm it's you" page: the password, before a sensitive action goes ahead."""

    password = PasswordField("Your password", validators=[*PASSWORD, well_formed])


def confirmation_required(
        doing: str, *, unless: Callable[..., bool] = lambda **view_args: False,
        back: str = "account.sessions_page") -> Callable[[Callable[..., Any]], Any]:
    """Run the view only once the signed-in person has proved who they are recently, or when
    ``unless(**view_args)`` holds (signing out this very device never asks).

    ``doing`` completes "To ..., enter your password" on the page; ``back`` is the endpoint its
    Cancel link leads to. Goes under ``login_required``.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            needed = not unless(**kwargs) and not signing_in.recently_proven()
            if is_api_request():
                return _confirm_json(needed, view, *args, **kwargs)
            if "passkey" in request.form:
                if confirm_with_passkey(request.form["passkey"]):
                    return view(*args, **kwargs)
                form = ReauthForm()
                form.password.errors = [PASSKEY_REFUSED]
                return _ask(form, doing, back), 401
            if "password" not in request.form:
                if not needed:
                    return view(*args, **kwargs)
                return _ask(ReauthForm(), doing, back), 200
            # A password that is sent is checked, even when none was needed.
            form = ReauthForm()
            if form.validate() and confirm(form.password.data):
                return view(*args, **kwargs)
            if not form.password.errors:
                form.password.errors.append(WRONG_PASSWORD)
            return _ask(form, doing, back), 401

        return wrapped

    return decorate


def confirm(password: str) -> bool:
    """Whether ``password`` is the signed-in person's; if so, the re-authentication window
    starts again for this session. Throttled and recorded like any password check."""
    if signing_in.confirm_password(password, failure=audit.REAUTH_FAILED) is None:
        return False
    signing_in.proven_again(Method.PASSWORD)
    return True


def confirm_with_passkey(credential: str) -> bool:
    """Whether ``credential`` answers this browser's re-authentication challenge with one of
    the signed-in person's passkeys; if so, the window starts again. Refusals are throttled
    (Throttled beyond the limit, which the error pages answer) and recorded."""
    try:
        signing_in.passkey_answer(credential, passkeys.REAUTH)
    except passkeys.PasskeyRefused:
        return False
    signing_in.proven_again(Method.PASSKEY)
    return True


def _confirm_json(needed: bool, view: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    password = _sent_password()
    if password is None:
        if needed:
            raise ReauthenticationRequired()
    elif not confirm(password):  # a password that is sent is checked, even when not needed
        raise ReauthenticationRequired(WRONG_PASSWORD)
    return view(*args, **kwargs)


def _sent_password() -> str | None:
    """The password in a JSON call's body; None when the body is empty or carries none.
    A body that is not a JSON object, or a password that is not a string, is malformed."""
    if not request.get_data(cache=True):
        return None
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise MalformedRequest(NOT_AN_OBJECT)
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        raise MalformedRequest(NOT_A_STRING)
    return password or None


def _ask(form: ReauthForm, doing: str, back: str) -> str:
    carried = [(name, value) for name, value in request.form.items(multi=True)
               if name not in NOT_CARRIED]
    return render_template("auth/reauth.html", form=form, doing=doing, carried=carried,
                           action=_this_url(), back=url_for(back),
                           passkey=signing_in.on_relying_party() and bool(
                               passkeys.of_user(current_principal().user_id)),
                           window=settings.current().reauth_window)


def _this_url() -> str:
    """Where this request was sent, rebuilt by the router (not the decoded path, in which an
    escaped ``?`` or ``#`` would become a real one), with its query string encoded again. The
    query never goes through ``url_for``, which would take ``_external``, ``_scheme``,
    ``_anchor`` or ``_method`` from it as its own arguments: the action stays a path on this
    site, whatever the query or the Host header."""
    path = url_for(request.endpoint or "", **(request.view_args or {}))
    query = urlencode(list(request.args.items(multi=True)))
    return f"{path}?{query}" if query else path
