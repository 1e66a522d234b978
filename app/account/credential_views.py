"""The signed-in person's credentials: a new password, a new email address (and the page the
confirmation link mailed to it opens)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from app import audit, links, recovery, settings, signing_in, users
from app.account import bp
from app.account.forms import EmailForm, PasswordForm
from app.forms import ButtonForm
from app.linkpages import link_page
from app.middleware import (
    auth_state,
    client_ip,
    current_principal,
    device_name,
    login_required,
)
from app.models import LinkToken
from app.recovery import email_change
from app.sessions import rules
from app.sessions.state import Method
from app.signing_in import origin

NOT_CURRENT = "That is not your current password."


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    config = settings.current()
    form = PasswordForm(current_principal().email)
    if form.validate_on_submit():
        user = signing_in.confirm_password(form.current_password.data,
                                           failure=audit.CURRENT_PASSWORD_FAILED)
        if user is not None:
            users.change_password(user, form.new_password.data, hasher=config.hasher,
                                  now=config.clock(), ip=client_ip(),
                                  then=_end_other_sessions_for_new_password)
            flash("Your password was changed and every other session was signed out.",
                  "success")
            return redirect(url_for("account.sessions_page"))
        form.current_password.errors.append(NOT_CURRENT)
    return render_template("account/password.html", form=form)


def _end_other_sessions_for_new_password() -> None:
    principal = current_principal()
    signing_in.proven_again(Method.PASSWORD)
    signing_in.end_other_sessions(rules.PASSWORD_CHANGED)
    links.retire_after_credential_change(principal.user_id, now=settings.now())
    recovery.notice(principal.email, "password_changed", device_name=device_name(), **origin())


@bp.route("/account/email", methods=["GET", "POST"])
@login_required
def change_email():
    form = EmailForm()
    if form.validate_on_submit():
        user = signing_in.confirm_password(form.current_password.data,
                                           failure=audit.CURRENT_PASSWORD_FAILED)
        if user is not None:
            email_change.request_email_change(user.id, form.email.data, **origin())
            flash(f"We sent a link to {form.email.data}. Your address changes to it when you "
                  "open the link; until then it stays as it is.", "success")
            return redirect(url_for("account.account"))
        form.current_password.errors.append(NOT_CURRENT)
    return render_template("account/email.html", form=form)


@bp.route("/account/email/confirm", methods=["GET", "POST"])
@link_page(links.NEW_EMAIL)
def confirm_email(token: str, row: LinkToken, acting: bool):
    form = ButtonForm()
    if acting and form.validate_on_submit():
        user = email_change.confirm_email_change(token, **origin())
        flash(f"Your email address is now {user.email}.", "success")
        signed_in = auth_state().signed_in
        return redirect(url_for("account.account" if signed_in else "auth.login"))
    return render_template("auth/link_action.html", form=form, kind="new_email", token=token)
