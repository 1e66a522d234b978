"""Accounts blueprint: register, sign in, sign out, change password; and the password
confirmation that sensitive actions elsewhere ask for."""

from __future__ import annotations

from flask import Blueprint, Flask
from werkzeug.exceptions import Forbidden

from app import middleware, session_store, settings, users

bp = Blueprint("auth", __name__)


class ReauthenticationRequired(Forbidden):
    """A sensitive JSON call without the signed-in person's current password."""

    description = "Enter your current password to confirm."


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def reauth_due() -> bool:
    """Sensitive actions ask for the password again once the last sign-in is this old."""
    config = settings.current()
    principal = middleware.current_principal()
    return config.clock() - principal.authenticated_at > config.reauth_window


def confirm_password(password: str | None) -> bool:
    """True when no re-authentication is due, or ``password`` is the signed-in person's own.

    Failures count against the same throttles as sign-in.
    """
    if not reauth_due():
        return True
    config, principal = settings.current(), middleware.current_principal()
    at = config.clock()
    user = users.verify_current(principal.user_id, password or "", hasher=config.hasher,
                                limits=config.throttles, now=at, ip=middleware.client_ip())
    if user is not None:
        session_store.reauthenticated(principal.session_id, now=at)
    return user is not None


from app.auth import views  # noqa: E402,F401  (routes register themselves on bp)
