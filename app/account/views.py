from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app import audit, middleware, session_rules, session_store, settings
from app.account import bp
from app.auth.reauth import recent_password_required
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
    at, page = config.clock(), request.args.get
    return render_template(
        "account/sessions.html",
        live=session_store.list_active(principal.user_id, policy=config.policy, now=at,
                                       current=principal.session_id,
                                       page=page("live", 1, int)),
        ended=session_store.list_ended(principal.user_id, since=at - RECENTLY_ENDED,
                                       page=page("ended", 1, int)),
        events=session_store.paged(audit.recent(principal.user_id), page("events", 1, int)),
        describe=describe, now=at, policy=config.policy,
        expires_at=session_rules.expires_at)


def this_device(session_id: str) -> bool:
    """Signing out the very browser that asks needs no password (nor does the header's)."""
    return session_id == current_principal().session_public_id


@bp.route("/sessions/<session_id>/revoke", methods=["POST"])
@login_required
@recent_password_required("sign out that session", unless=this_device)
def revoke(session_id: str) -> Response:
    if middleware.end_session(session_id):
        return redirect(url_for("auth.login"))
    flash("That session was signed out. It can no longer be used.", "success")
    return redirect(url_for("account.sessions_page"))


@bp.route("/sessions/revoke-others", methods=["POST"])
@login_required
@recent_password_required("sign out all your other sessions")
def revoke_others() -> Response:
    count = middleware.end_other_sessions(session_rules.REVOKED_OTHERS)
    flash(f"Signed out {count} other session{'s' if count != 1 else ''}.", "success")
    return redirect(url_for("account.sessions_page"))

