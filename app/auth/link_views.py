"""The pages behind mailed links (verification, reset, "this wasn't me") and the
forgotten-password form. A link's GET only shows a page; its form's POST acts, because mail
scanners and link previewers fetch every link in a message."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app import links, middleware, settings, signing_in
from app.auth import bp
from app.auth.forms import ForgotForm, VerifyForm
from app.forms import SAME_PASSWORD, ButtonForm, NewPasswordForm
from app.linkpages import fresh, link_page, new_password_page
from app.middleware import client_ip
from app.models import LinkToken, User
from app.recovery import not_me as disowning
from app.recovery import registration, reset
from app.recovery import unlock as unlocking
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


@bp.route("/password/reset", methods=["GET", "POST"])
@link_page(links.RESET)
def reset_password(token: str, row: LinkToken, acting: bool):
    user = User.get_by_id(row.user_id)
    form = NewPasswordForm(user.email, **fresh(acting))
    if acting and form.validate_on_submit():
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
    return render_template("auth/reset.html", form=form, email=user.email, token=token)


@bp.route("/email/verify", methods=["GET", "POST"])
@link_page(links.VERIFY)
def verify_email(token: str, row: LinkToken, acting: bool):
    """Confirming an address takes the account's password as well as the link, and signs
    this browser in: the person has just proven both."""
    user = User.get_by_id(row.user_id)
    form = VerifyForm(**fresh(acting))
    if acting and form.validate_on_submit():
        if registration.verify_email(token, form.password.data, now=settings.now(), ip=client_ip(),
                                 device_id=middleware.device_id()) is not None:
            target = url_for("account.account")
            onward = signing_in.sign_in_or_hold(user, Method.PASSWORD, target)
            flash("Your email address is confirmed" + (
                ", and you are signed in." if onward == target else "."), "success")
            return redirect(onward)
        form.password.errors.append(WRONG_PASSWORD)
    return render_template("auth/verify.html", form=form, email=user.email, token=token), (
        401 if form.errors else 200)


@bp.route("/not-me", methods=["GET", "POST"])
@link_page(links.NOT_ME)
def not_me(token: str, row: LinkToken, acting: bool):
    """The session a new-sign-in mail named, and the person's others; pressed, it ends them
    and goes straight on to a new password (this page's answer is the reset form)."""
    if acting and ButtonForm().validate_on_submit():
        reset_token = disowning.disown(token, also=request.form.getlist("end"),
                                       this_device=middleware.device_hash(),
                                       now=settings.now(), ip=client_ip())
        return new_password_page(User.get_by_id(row.user_id), reset_token, (
            "not-me-done", "That session has ended, and the password it signed in with no "
            "longer works: whoever knows it cannot sign in with it again."))
    found = disowning.report(row, this_device=middleware.device_hash(), now=settings.now())
    return render_template("auth/not_me.html", form=ButtonForm(), token=token, found=found)


@bp.route("/unlock", methods=["GET", "POST"])
@link_page(links.UNLOCK)
def unlock(token: str, row: LinkToken, acting: bool):
    """The link mailed when failed sign-ins locked the account: its button lifts the lock."""
    if acting and ButtonForm().validate_on_submit():
        unlocking.unlock(token, now=settings.now(), ip=client_ip())
        flash("Your account is unlocked: sign in with your password.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/unlock.html", form=ButtonForm(), token=token)
