from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for

from app import accounts, middleware, recovery, sessions
from app.auth import bp, settings
from app.auth.forms import LoginForm, PasswordForm, RegisterForm
from app.middleware import login_required

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


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        recovery.register(form.email.data, form.password.data, hasher=settings().hasher,
                          now=middleware.now(), ip=middleware.client_ip(),
                          user_agent=middleware.user_agent())
        if recovery.policy().verification:  # the same page whether the address was taken
            return render_template("auth/check_email.html", email=form.email.data)
        flash("Your account is ready. Sign in with your email and password.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data,
                                     hasher=settings().hasher, limits=settings().throttles,
                                     now=middleware.now(), ip=middleware.client_ip())
        if user is not None and recovery.can_sign_in(user):
            middleware.sign_in(user)
            return redirect(safe_next(form.next.data))
        if user is not None:  # the right password, an unconfirmed address: a new link
            recovery.resend_verification(user, now=middleware.now(), ip=middleware.client_ip(),
                                         user_agent=middleware.user_agent())
        # With verification, a wrong password and an unconfirmed address answer alike: else
        # signing in would tell whether an address someone just registered was taken.
        form.password.errors.append(SIGN_IN_FAILED_UNCONFIRMED if recovery.policy().verification
                                    else SIGN_IN_FAILED)
    return render_template("auth/login.html", form=form), 401 if form.errors else 200


@bp.route("/logout", methods=["POST"])
def logout():
    middleware.sign_out()
    flash("You have signed out.", "success")
    response = redirect(url_for("auth.login"))
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    principal = middleware.auth().principal
    form = PasswordForm(principal.email)
    if form.validate_on_submit():
        user = accounts.verify_current(principal.user_id, form.current_password.data,
                                       hasher=settings().hasher, limits=settings().throttles,
                                       now=middleware.now(), ip=middleware.client_ip())
        if user is not None:
            accounts.change_password(
                user, form.new_password.data, hasher=settings().hasher, now=middleware.now(),
                ip=middleware.client_ip(), then=_end_other_sessions_for_new_password)
            flash("Your password was changed and every other session was signed out.",
                  "success")
            return redirect(url_for("account.sessions_page"))
        form.current_password.errors.append("That is not your current password.")
    return render_template("auth/password.html", form=form)


def _end_other_sessions_for_new_password() -> None:
    principal, at = middleware.auth().principal, middleware.now()
    sessions.reauthenticated(principal.session_id, now=at)
    middleware.end_other_sessions(sessions.PASSWORD_CHANGED)
    recovery.notice(principal.email, "Your password was changed",
                    "The password of your Gatehouse account was changed, and every other "
                    "session was signed out.",
                    "If this was you, you need do nothing. If it wasn't, reset your password "
                    "now: that signs out whoever changed it.",
                    now=at, ip=middleware.client_ip(), user_agent=middleware.user_agent())
