"""Same-origin JSON: the same cookies and transparent rotation as the pages; 401, never a
redirect, when not signed in. No token ever appears in a body."""

from __future__ import annotations

from flask import Response, jsonify, request

from app import settings, signing_in
from app.account import api
from app.account.views import this_device
from app.devices import describe
from app.errors import MalformedRequest
from app.middleware import current_principal, login_required
from app.paging import page_number
from app.reauth import confirmation_required
from app.sessions import queries, rules
from app.words import iso

BAD_PAGE = "The page must be a whole number, 1 or more."


@api.get("/me")
@login_required
def me() -> Response:
    principal = current_principal()
    return jsonify(email=principal.email, user_id=principal.user_public_id,
                   session_id=principal.session_public_id)


@api.get("/sessions")
@login_required
def list_sessions() -> Response:
    try:
        page = page_number(request.args.get("page"))
    except ValueError:
        raise MalformedRequest(BAD_PAGE) from None
    principal, config = current_principal(), settings.current()
    live = queries.list_active(principal.user_id, policy=config.policy,
                               now=config.clock(), current=principal.session_id, page=page)
    return jsonify(sessions=[_session(s, config, principal.session_public_id)
                             for s in live.items],
                   page=live.number, next_page=live.number + 1 if live.has_next else None)


def _session(s, config: settings.Settings, current: str) -> dict:
    """One session as JSON: each time as UNIX seconds and as ISO 8601 (UTC) beside it."""
    times = {"signed_in_at": s.created_at, "last_active_at": s.last_active_at,
             "expires_at": rules.expires_at(s.last_active_at, s.absolute_expires_at,
                                            config.policy)}
    return {
        "id": s.public_id, "device": s.chosen_name or s.device_name or describe(s.user_agent),
        "ip_address": s.ip_address, "last_device": s.last_device_name or s.device_name,
        "last_ip_address": s.last_ip_address, **times,
        **{f"{name}_iso": iso(at) for name, at in times.items()},
        "current": s.public_id == current,
    }


@api.delete("/sessions/<session_id>")
@login_required
@confirmation_required("sign out that session", unless=this_device)
def delete_session(session_id: str) -> tuple[str, int]:
    signing_in.end_session(session_id)  # this very session is signed out, cookies cleared
    return "", 204  # no body, so no Content-Type either (dropped at the headers' edge)
