"""The pages behind mailed links (verification, reset, "this wasn't me") and the
forgotten-password form. A link's GET only shows a page; its form's POST acts, because mail
scanners and link previewers fetch every link in a message."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from app import links, middleware, settings, signing_in
from app.auth import bp
from app.auth.forms import ForgotForm, VerifyForm
from app.forms import SAME_PASSWORD, ButtonForm, NewPasswordForm
from app.middleware import client_ip
from app.models import User
from app.recovery import registration, reset
from app.sessions.state import Method
from app.signing_in import origin

WRONG_PASSWORD = ("That password is not right. Enter the one you chose when you created the "
                  "account.")


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot():
    form = ForgotForm()
    if form.validate_on_submit():
        reset.request_reset(form.email.data, **origin())
        return render_template("auth/forgot_sent.html")
    return render_template("auth/forgot.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    user = User.get_by_id(links.check(token, links.RESET, now=settings.now()).user_id)
    form = NewPasswordForm(user.email)
    if form.validate_on_submit():
        if not reset.is_current_password(token, user, form.new_password.data,
                                            now=settings.now()):
            user = reset.reset_password(token, form.new_password.data, **origin())
            # Two-step sign-in stays on: the code is still asked before this browser is in.
            target = url_for("account.sessions_page")
            onward = signing_in.sign_in_or_hold(user, Method.RESET, target)
            flash("Your password was reset and every session was signed out. " + (
                "This browser is signed in with the new password." if onward == target else
                "Enter a code from your authenticator app to sign in."), "success")
            return redirect(onward)
        form.new_password.errors.append(SAME_PASSWORD)
    return render_template("auth/reset.html", form=form, email=user.email)


@bp.route("/email/verify/<token>", methods=["GET", "POST"])
def verify_email(token: str):
    """Confirming an address takes the account's password as well as the link, and signs
    this browser in: the person has just proven both."""
    user = User.get_by_id(links.check(token, links.VERIFY, now=settings.now()).user_id)
    form = VerifyForm()
    if form.validate_on_submit():
        if registration.verify_email(token, form.password.data, now=settings.now(), ip=client_ip(),
                                 device_id=middleware.device_id()) is not None:
            target = url_for("account.account")
            onward = signing_in.sign_in_or_hold(user, Method.PASSWORD, target)
            flash("Your email address is confirmed" + (
                ", and you are signed in." if onward == target else "."), "success")
            return redirect(onward)
        form.password.errors.append(WRONG_PASSWORD)
    return render_template("auth/verify.html", form=form, email=user.email), (
        401 if form.errors else 200)


@bp.route("/not-me/<token>", methods=["GET", "POST"])
def not_me(token: str):
    links.check(token, links.NOT_ME, now=settings.now())
    form = ButtonForm()
    if form.validate_on_submit():
        user = reset.end_unknown_session(token, now=settings.now(), ip=client_ip())
        return render_template("auth/not_me_done.html", form=ForgotForm(email=user.email))
    return render_template("auth/link_action.html", form=form, kind="not_me")
