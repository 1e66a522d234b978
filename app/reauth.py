"""Asking the signed-in person to prove who they are again before a sensitive action: once, on
a page of its own, and only when the action needs it and their last proof is older than
``GATEHOUSE_REAUTH_WINDOW``.

The page's form posts back to the action's own address with the action's fields carried along
(under a fresh CSRF token) plus ``password``, so that the right password performs the action at
once. A JSON call sends ``{"password": ...}`` in its body instead and is answered 403
``reauthentication_required`` until it does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField

from app import audit, passkeys, settings, signing_in
from app.errors import ReauthenticationRequired
from app.forms import PASSWORD, well_formed
from app.middleware import current_principal
from app.security import is_api_request
from app.sessions.state import Method

WRONG_PASSWORD = "That password is not right."
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
            if unless(**kwargs) or signing_in.recently_proven():
                return view(*args, **kwargs)
            if is_api_request():
                return _confirm_json(view, *args, **kwargs)
            form = ReauthForm()
            if "passkey" in request.form:
                if confirm_with_passkey(request.form["passkey"]):
                    return view(*args, **kwargs)
                form.password.errors = [PASSKEY_REFUSED]
                return _ask(form, doing, back), 401
            if "password" not in request.form:
                return _ask(form, doing, back), 200
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


def _confirm_json(view: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    body = request.get_json(silent=True)
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(password, str) or not password:
        raise ReauthenticationRequired()
    if not confirm(password):
        raise ReauthenticationRequired(WRONG_PASSWORD)
    return view(*args, **kwargs)


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
    escaped ``?`` or ``#`` would become a real one), with its query string."""
    arguments: dict[str, Any] = {**(request.view_args or {}),
                                 **request.args.to_dict(flat=False)}
    return url_for(request.endpoint or "", **arguments)
