from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for

from app import middleware, settings, signing_in, users, words
from app.auth import bp
from app.auth.forms import LoginForm, RegisterForm
from app.middleware import client_ip
from app.recovery import can_sign_in, registration
from app.sessions import rules
from app.signing_in import origin

SIGN_IN_FAILED = "That email and password don't match an account."
SIGN_IN_FAILED_UNCONFIRMED = ("That email and password don't match an account whose address is "
                              "confirmed. If you have just registered, open the link we mailed "
                              "you first.")


def safe_next(target: str | None) -> str:
    """Only a path on this site: one leading slash, no scheme, no host, no backslash tricks."""
    target = (target or "").strip()
    parts = urlsplit(target)
    if (not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target
            or parts.scheme or parts.netloc or any(ord(c) < 32 for c in target)):
        return url_for("account.account")
    return target


def offer_switch(view: Callable[..., Any]) -> Callable[..., Any]:
    """Opened while signed in: say as whom, with a way on and a way to switch account, rather
    than a form (which still works when posted: signing in starts a new session)."""

    @functools.wraps(view)
    def wrapped() -> Any:
        if request.method == "GET" and middleware.auth_state().signed_in:
            target = request.args.get("next")
            return render_template("auth/signed_in.html", target=safe_next(target),
                                   onward=bool(target), back=request.path)
        return view()

    return wrapped


@bp.route("/register", methods=["GET", "POST"])
@offer_switch
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        registration.register(form.email.data, form.password.data, **origin())
        if settings.current().email_verification:  # the same page whether it was taken
            return render_template("auth/check_email.html", email=form.email.data)
        flash("Your account is ready. Sign in with your email and password.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@offer_switch
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        config = settings.current()
        user = users.authenticate(form.email.data, form.password.data, hasher=config.hasher,
                                  limits=config.throttles, now=config.clock(), ip=client_ip(),
                                  device_id=middleware.device_id(), usable=can_sign_in)
        if user is not None and can_sign_in(user):
            signing_in.sign_in(user)
            return redirect(safe_next(form.next.data))
        if user is not None:  # the right password, an unconfirmed address: a new link
            registration.resend_verification(user, **origin())
        # With verification, a wrong password and an unconfirmed address answer alike: else
        # signing in would tell whether an address someone just registered was taken.
        form.password.errors.append(SIGN_IN_FAILED_UNCONFIRMED if config.email_verification
                                    else SIGN_IN_FAILED)
    return render_template("auth/login.html", form=form), 401 if form.errors else 200


@bp.route("/logout", methods=["POST"])
def logout():
    signing_in.sign_out()
    flash(words.end_reason(rules.SIGNED_OUT).message, "success")
    # Switching account from the registration page leads back to it; anything else to sign-in.
    register = url_for("auth.register")
    response = redirect(register if request.form.get("next") == register
                        else url_for("auth.login"))
    response.headers["Clear-Site-Data"] = '"cache"'
    return response
