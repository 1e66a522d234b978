from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from app import audit, sessions
from app.account import bp
from app.auth import confirm_password, reauth_due
from app.auth.forms import ConfirmForm
from app.db import UNAVAILABLE, database
from app.devices import describe
from app.middleware import (
    auth,
    client_ip,
    end_other_sessions,
    gatehouse,
    login_required,
    now,
    sign_out,
)

RECENTLY_ENDED = 7 * 24 * 3600


@bp.route("/")
def index():
    return render_template("index.html")


@bp.route("/account")
@login_required
def account():
    return render_template("account/account.html")


@bp.route("/sessions")
@login_required
def sessions_page():
    principal, at = auth().principal, now()
    policy, page = gatehouse().policy, request.args.get
    return render_template(
        "account/sessions.html",
        live=sessions.list_active(principal.user_id, policy=policy, now=at,
                                  current=principal.session_id, page=page("live", 1, int)),
        ended=sessions.list_ended(principal.user_id, since=at - RECENTLY_ENDED,
                                  page=page("ended", 1, int)),
        events=sessions.paged(audit.recent(principal.user_id), page("events", 1, int)),
        describe=describe, now=at, policy=policy, expires_at=sessions.expires_at,
        form=ConfirmForm(), reauth=reauth_due())


@bp.route("/sessions/<session_id>/revoke", methods=["POST"])
@login_required
def revoke(session_id: str):
    confirm_sensitive_action()
    principal = auth().principal
    if session_id == principal.session_public_id:
        sign_out()
        return redirect(url_for("auth.login"))
    sessions.revoke(session_id, user_id=principal.user_id, reason=sessions.REVOKED, now=now(),
                    ip_address=client_ip(), actor=principal.session_public_id)
    flash("That session was signed out. It can no longer be used.", "success")
    return redirect(url_for("account.sessions_page"))


@bp.route("/sessions/revoke-others", methods=["POST"])
@login_required
def revoke_others():
    confirm_sensitive_action()
    count = end_other_sessions(sessions.REVOKED_OTHERS)
    flash(f"Signed out {count} other session{'s' if count != 1 else ''}.", "success")
    return redirect(url_for("account.sessions_page"))


def confirm_sensitive_action() -> None:
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if not confirm_password(form.password.data):
        flash("Enter your current password to confirm.", "error")
        abort(redirect(url_for("account.sessions_page")))


@bp.route("/healthz")
def healthz():
    """200 when the database answers, 503 when it does not (for load balancers)."""
    try:
        database.execute_sql("SELECT 1")
    except UNAVAILABLE:
        return {"status": "unavailable"}, 503
    return {"status": "ok"}
