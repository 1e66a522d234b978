"""A device's name, a session's timeline, and "sign out all other sessions" with its count."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app import audit, config, devices, middleware, settings, signing_in, words
from app.account import bp, timeline
from app.account.forms import DeviceNameForm
from app.account.views import device_name, sessions_context
from app.middleware import current_principal, login_required
from app.models import LoginSession
from app.paging import paged
from app.reauth import confirmation_required
from app.sessions import queries, rules


def own_session(session_id: str) -> LoginSession:
    """One of the signed-in person's sessions, live or ended; 404 for anyone else's."""
    try:
        return queries.find(current_principal().user_id, session_id)
    except rules.SessionNotFound:
        abort(404)


def on_this_device(session_id: str) -> bool:
    """Naming the browser that asks needs no password; naming another device does, when it is
    due (whoever holds a stolen session must not relabel the owner's devices at will)."""
    try:
        session = queries.find(current_principal().user_id, session_id)
    except rules.SessionNotFound:
        return False
    return bool(session.device_hash) and session.device_hash == middleware.device_hash()


@bp.route("/sessions/<session_id>/name", methods=["POST"])
@login_required
@confirmation_required("rename that device", unless=on_this_device)
def name_device(session_id: str):
    session, form = own_session(session_id), DeviceNameForm()
    if session.ended_at is not None:
        abort(404)  # only live sessions' devices are named: their cards carry the form
    if not form.validate_on_submit():
        context = sessions_context(renaming=devices.key(session), name_form=form)
        return render_template("account/sessions.html", **context), 400
    now = settings.now()
    if not devices.rename(session, form.name.data, now):
        abort(404)
    audit.record(audit.DEVICE_NAMED, user=session.user_id, session=session.id, now=now,
                 ip=middleware.client_ip(), detail=form.name.data)
    flash(f"This device is now called “{form.name.data}”." if form.name.data else
          "This device's name was removed: it is shown by its browser again.", "success")
    return redirect(url_for("account.sessions_page", live=request.args.get("live", 1, int)))


@bp.route("/sessions/<session_id>")
@login_required
def session_timeline(session_id: str) -> str:
    session = own_session(session_id)
    actors = queries.by_public_id(session.user_id, {session.ended_by} - {""})
    actor = actors.get(session.ended_by)
    events = paged(audit.of_session(session.id),
                                 request.args.get("page", 1, int))
    return render_template(
        "account/timeline.html", session=session, name=device_name(session),
        actor=device_name(actor) if actor else "", events=events,
        entry=lambda event: timeline.entry(event, session, device_name(actor) if actor else ""),
        more_refused=max(0, session.refused_uses - config.REFUSED_DETAIL),
        current=session.id == current_principal().session_id,
        policy=settings.current().policy, words=words.end_reason(session.end_reason))


@bp.route("/sessions/revoke-others", methods=["GET"])
@login_required
def revoke_others_page() -> str:
    principal, config = current_principal(), settings.current()
    counts = queries.count_others(principal.user_id, policy=config.policy,
                                        now=config.clock(), keep=principal.session_id)
    return render_template("account/revoke_others.html", counts=counts, plural=words.plural)


@bp.route("/sessions/revoke-others", methods=["POST"])
@login_required
@confirmation_required("sign out all your other sessions")
def revoke_others() -> Response:
    ended = signing_in.end_other_sessions(rules.REVOKED_OTHERS)
    if not ended.sessions:
        flash("There were no other sessions to sign out.", "success")
    else:
        flash(f"Signed out {words.plural(ended.sessions, 'other session')} on "
              f"{words.plural(ended.devices, 'device')}.", "success")
    return redirect(url_for("account.sessions_page"))


@bp.route("/sessions/forget-device", methods=["POST"])
@login_required
@confirmation_required("forget this browser")
def forget_device() -> Response:
    """This browser only, but after a recent proof, unlike signing it out: a copy of its
    cookies elsewhere must not take away the lockout exemption the owner's browser has."""
    signing_in.forget_this_device()
    flash("This browser was signed out and forgotten: its name is gone, and its next sign-in "
          "is announced like a new browser's.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/sessions/revoke-all", methods=["POST"])
@login_required
@confirmation_required("sign out everywhere, this browser too")
def revoke_all() -> Response:
    ended = signing_in.end_every_session()
    flash(f"Signed out everywhere: {words.plural(ended.sessions, 'other session')} on "
          f"{words.plural(ended.devices, 'other device')}, and this browser.", "success")
    return redirect(url_for("auth.login"))
