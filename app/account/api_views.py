"""Same-origin JSON: the same cookies and transparent rotation as the pages; 401, never a
redirect, when not signed in. No token ever appears in a body."""

from __future__ import annotations

from flask import jsonify, request

from app import sessions
from app.account import api
from app.auth import confirm_password
from app.devices import describe
from app.middleware import auth, client_ip, gatehouse, login_required, now, sign_out


@api.get("/me")
@login_required
def me():
    principal = auth().principal
    return jsonify(email=principal.email, user_id=principal.user_public_id,
                   session_id=principal.session_public_id)


@api.get("/sessions")
@login_required
def list_sessions():
    principal, policy = auth().principal, gatehouse().policy
    live = sessions.list_active(principal.user_id, policy=policy, now=now())
    return jsonify(sessions=[{
        "id": s.public_id, "device": describe(s.user_agent), "ip_address": s.ip_address,
        "last_device": describe(s.last_user_agent), "last_ip_address": s.last_ip_address,
        "signed_in_at": s.created_at, "last_active_at": s.last_active_at,
        "expires_at": sessions.expires_at(s, policy),
        "current": s.public_id == principal.session_public_id,
    } for s in live])


@api.delete("/sessions/<session_id>")
@login_required
def delete_session(session_id: str):
    principal = auth().principal
    password = (request.get_json(silent=True) or {}).get("password")
    if not confirm_password(password if isinstance(password, str) else None):
        return jsonify(error="reauthentication_required"), 403
    if session_id == principal.session_public_id:
        sign_out()  # ending this very session also clears its cookies, as signing out does
        return "", 204
    sessions.revoke(session_id, user_id=principal.user_id, reason=sessions.REVOKED, now=now(),
                    ip_address=client_ip(), actor=principal.session_public_id)
    return "", 204
