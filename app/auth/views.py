from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for

from app import middleware, session_rules, session_store, settings, users
from app.auth import bp
from app.auth.forms import LoginForm, PasswordForm, RegisterForm
from app.middleware import client_ip, current_principal, login_required

SIGN_IN_FAILED = "That email and password don't match an account."


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
        users.register(form.email.data, form.password.data, hasher=settings.current().hasher,
                       now=settings.now(), ip=client_ip())
        flash("Your account is ready. Sign in with your email and password.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        config = settings.current()
        user = users.authenticate(form.email.data, form.password.data, hasher=config.hasher,
                                  limits=config.throttles, now=config.clock(), ip=client_ip())
        if user is not None:
            middleware.sign_in(user)
            return redirect(safe_next(form.next.data))
        form.password.errors.append(SIGN_IN_FAILED)
    return render_template("auth/login.html", form=form), 401 if form.errors else 200


@bp.route("/logout", methods=["POST"])
def logout():
    middleware.sign_out()
    flash(session_rules.end_reason(session_rules.SIGNED_OUT).message, "success")
    response = redirect(url_for("auth.login"))
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    principal, config = current_principal(), settings.current()
    form = PasswordForm(principal.email)
    if form.validate_on_submit():
        user = users.verify_current(principal.user_id, form.current_password.data,
                                    hasher=config.hasher, limits=config.throttles,
                                    now=config.clock(), ip=client_ip())
        if user is not None:
            users.change_password(
                user, form.new_password.data, hasher=config.hasher, now=config.clock(),
                ip=client_ip(), then=_end_other_sessions_for_new_password)
            flash("Your password was changed and every other session was signed out.",
                  "success")
            return redirect(url_for("account.sessions_page"))
        form.current_password.errors.append("That is not your current password.")
    return render_template("auth/password.html", form=form)


def _end_other_sessions_for_new_password() -> None:
    session_store.reauthenticated(current_principal().session_id, now=settings.now())
    middleware.end_other_sessions(session_rules.PASSWORD_CHANGED)
