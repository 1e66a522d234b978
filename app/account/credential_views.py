"""The signed-in person's credentials: a new password, a new email address (and the page the
confirmation link mailed to it opens)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from app import audit, links, recovery, settings, signing_in, users
from app.account import bp
from app.account.forms import EmailForm, PasswordForm
from app.forms import ButtonForm
from app.linkpages import link_page, new_password_page
from app.middleware import (
    auth_state,
    client_ip,
    current_principal,
    device_name,
    login_required,
)
from app.models import LinkToken, User
from app.recovery import email_change
from app.sessions import rules
from app.sessions.state import Method
from app.signing_in import origin

NOT_CURRENT = "That is not your current password."
SAME_ADDRESS = "That is already your address: nothing to change."


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
        if form.email.data == current_principal().email:
            form.email.errors.append(SAME_ADDRESS)
            return render_template("account/email.html", form=form)
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
    """The new address's link works in a browser signed in to the account that asked (the
    page names it); anywhere else it says so and names nothing."""
    principal = auth_state().principal
    if principal is None or principal.user_id != row.user_id:
        return render_template("account/email_confirm.html", signed_in=principal is not None,
                               token=token), 403
    form = ButtonForm()
    if acting and form.validate_on_submit():
        user = email_change.confirm_email_change(token, **origin())
        flash(f"Your email address is now {user.email}.", "success")
        return redirect(url_for("account.account"))
    return render_template("account/email_confirm.html", form=form, token=token,
                           old=principal.email, new=row.email)


@bp.route("/account/email/undo", methods=["GET", "POST"])
@link_page(links.UNDO_EMAIL)
def undo_email(token: str, row: LinkToken, acting: bool):
    """From the old address: put it back, sign out everywhere, choose a new password."""
    form = ButtonForm()
    if acting and form.validate_on_submit():
        user, reset_token = email_change.undo_email_change(token, now=settings.now(),
                                                           ip=client_ip())
        return new_password_page(user, reset_token, (
            "email-restored", f"Your address is {user.email} again, every session was "
            "signed out, and the password no longer works: choose a new one."))
    return render_template("account/email_undo.html", form=form, token=token, old=row.email,
                           now=User.get_by_id(row.user_id).email)
