"""Signing in beyond the password: with a passkey (its challenge, then its answer), and the
second step of a password sign-in when the account has an authenticator app."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, url_for

from app import passkeys, settings, signing_in, twostep
from app.auth import bp
from app.auth.forms import LoginForm, PasskeySignInForm, SecondStepForm
from app.auth.views import safe_next
from app.middleware import client_ip
from app.models import User
from app.recovery import can_sign_in
from app.security import mark_private
from app.sessions.state import Method

PASSKEY_REFUSED = ("That passkey was not accepted. Try it again, or sign in with your email and "
                   "password.")
WRONG_CODE = "That code is not right, or was already used. Enter a new one."
EXPIRED = "That sign-in took too long. Sign in again."


@bp.route("/login/passkey/options", methods=["POST"])
def passkey_options():
    """A fresh challenge for this browser (its handle in Flask's signed cookie)."""
    if signing_in.relying_party() is None:
        abort(404)
    mark_private()  # a challenge for this browser alone: never stored by a cache
    return Response(signing_in.passkey_challenge(passkeys.SIGN_IN),
                    mimetype="application/json")


@bp.route("/login/passkey", methods=["POST"])
def passkey_sign_in():
    form = PasskeySignInForm()
    if form.validate_on_submit():
        try:
            passkey = signing_in.passkey_answer(form.credential.data, passkeys.SIGN_IN)
        except passkeys.PasskeyRefused:
            passkey = None
        user = User.get_by_id(passkey.user_id) if passkey else None
        if user is not None and can_sign_in(user):
            signing_in.sign_in(user, Method.PASSKEY)  # two factors already: no code asked
            return redirect(safe_next(form.next.data))
    login = LoginForm(formdata=None, next=form.next.data or "")
    return render_template("auth/login.html", form=login, passkey_error=PASSKEY_REFUSED), 401


@bp.route("/login/code", methods=["GET", "POST"])
def second_step():
    pending = signing_in.held_sign_in()
    if pending is None:
        flash(EXPIRED, "info")
        return redirect(url_for("auth.login"))
    form = SecondStepForm()
    if form.validate_on_submit():
        config, user = settings.current(), User.get_by_id(pending.user_id)
        if twostep.prove(user, form.code.data, limits=config.throttles, now=config.clock(),
                         ip=client_ip()) and twostep.release(pending):
            signing_in.sign_in(user, Method(pending.method))
            return redirect(safe_next(pending.target))
        form.code.errors.append(WRONG_CODE)
    return render_template("auth/second_step.html", form=form), 401 if form.errors else 200
