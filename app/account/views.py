from __future__ import annotations

from dataclasses import dataclass, field

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app import audit, devices, middleware, settings, signing_in
from app.account import bp
from app.account.forms import DeviceNameForm
from app.config import ENDED_SHOWN, RECENTLY_ENDED
from app.devices import describe
from app.middleware import current_principal, login_required
from app.models import LoginSession
from app.paging import paged
from app.reauth import confirmation_required
from app.recovery import email_change
from app.sessions import queries


@dataclass
class Device:
    """One card of the sessions page: a browser and its live sessions on this page."""

    key: str
    name: str
    parsed: str  # the browser and system its User-Agent names, shown under a chosen name
    this: bool
    sessions: list[LoginSession] = field(default_factory=list)


def device_name(session: LoginSession) -> str:
    return getattr(session, "chosen_name", None) or session.device_name or describe(
        session.user_agent)


def by_device(sessions: list[LoginSession], this_hash: str, current: int) -> list[Device]:
    """The page's sessions in cards, one per device, in the order their first session came."""
    cards: dict[str, Device] = {}
    for session in sessions:
        key = devices.key(session)
        card = cards.get(key)
        if card is None:
            card = cards[key] = Device(key, device_name(session), session.device_name,
                                       bool(this_hash) and key == this_hash)
        card.this = card.this or session.id == current
        card.sessions.append(session)
    return list(cards.values())


def sessions_context(**extra) -> dict:
    principal, config = current_principal(), settings.current()
    at, page = config.clock(), request.args.get
    this_hash = middleware.device_hash()
    live = queries.list_active(principal.user_id, policy=config.policy, now=at,
                                     current=principal.session_id, page=page("live", 1, int),
                                     device_hash=this_hash)
    return {**dict(
        live=live, devices=by_device(live.items, this_hash, principal.session_id),
        ended=queries.list_ended(principal.user_id, since=at - RECENTLY_ENDED,
                                       page=page("ended", 1, int)),
        events=paged(audit.recent(principal.user_id), page("events", 1, int)),
        device_name=device_name, ended_shown=ENDED_SHOWN, policy=config.policy, renaming=None,
        name_form=DeviceNameForm(formdata=None)), **extra}


@bp.route("/account")
@login_required
def account() -> str:
    pending = email_change.pending(current_principal().user_id, settings.now())
    return render_template("account/account.html", pending=pending)


@bp.route("/sessions")
@login_required
def sessions_page() -> str:
    return render_template("account/sessions.html", **sessions_context())


def this_device(session_id: str) -> bool:
    """Signing out the very browser that asks needs no password (nor does the header's)."""
    return session_id == current_principal().session_public_id


@bp.route("/sessions/<session_id>/revoke", methods=["POST"])
@login_required
@confirmation_required("sign out that session", unless=this_device)
def revoke(session_id: str) -> Response:
    if signing_in.end_session(session_id):
        return redirect(url_for("auth.login"))
    flash("That session was signed out. It can no longer be used.", "success")
    return redirect(url_for("account.sessions_page"))
