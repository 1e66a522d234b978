from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from app import audit, middleware, session_rules, session_store, settings
from app.account import bp
from app.auth import confirm_password, reauth_due
from app.auth.forms import ConfirmForm
from app.devices import describe
from app.middleware import current_principal, login_required

RECENTLY_ENDED = 7 * 24 * 3600


@bp.route("/account")
@login_required
def account() -> str:
    return render_template("account/account.html")


@bp.route("/sessions")
@login_required
def sessions_page() -> str:
    principal, config = current_principal(), settings.current()
    at = config.clock()
    return render_template(
        "account/sessions.html",
        live=session_store.list_active(principal.user_id, policy=config.policy, now=at),
        ended=session_store.list_ended(principal.user_id, since=at - RECENTLY_ENDED),
        events=audit.recent(principal.user_id), describe=describe, now=at,
        policy=config.policy, expires_at=session_rules.expires_at, form=ConfirmForm(),
        reauth=reauth_due())


@bp.route("/sessions/<session_id>/revoke", methods=["POST"])
@login_required
def revoke(session_id: str) -> Response:
    confirm_sensitive_action()
    if middleware.end_session(session_id):
        return redirect(url_for("auth.login"))
    flash("That session was signed out. It can no longer be used.", "success")
    return redirect(url_for("account.sessions_page"))


@bp.route("/sessions/revoke-others", methods=["POST"])
@login_required
def revoke_others() -> Response:
    confirm_sensitive_action()
    count = middleware.end_other_sessions(session_rules.REVOKED_OTHERS)
    flash(f"Signed out {count} other session{'s' if count != 1 else ''}.", "success")
    return redirect(url_for("account.sessions_page"))


def confirm_sensitive_action() -> None:
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if not confirm_password(form.password.data):
        flash("Enter your current password to confirm.", "error")
        abort(redirect(url_for("account.sessions_page")))
