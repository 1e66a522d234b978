"""Accounts blueprint: register, sign in, sign out, change password; and the password check
that sensitive actions elsewhere ask for (``reauth.recent_password_required``)."""

from __future__ import annotations

from flask import Blueprint, Flask

from app import middleware, settings, users
from app.models import User

bp = Blueprint("auth", __name__)

def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def reauth_due() -> bool:
    """Sensitive actions ask for the password again once it was last entered this long ago."""
    config = settings.current()
    principal = middleware.current_principal()
    return config.clock() - principal.authenticated_at > config.reauth_window


def verify_current_password(password: str, *,
                            failure: str = users.CURRENT_PASSWORD_FAILED) -> User | None:
    """The signed-in person, if ``password`` is theirs. Attempts count against the sign-in
    throttles, and this browser is judged by its own attempts when the account knows it; a
    wrong one is recorded as ``failure`` (where it was typed: the history tells it from a
    failed sign-in)."""
    config = settings.current()
    return users.verify_current(middleware.current_principal().user_id, password,
                                hasher=config.hasher, limits=config.throttles,
                                now=config.clock(), ip=middleware.client_ip(),
                                device_id=middleware.device_id(), failure=failure)


from app.auth import mail_views, views  # noqa: E402,F401  (routes register themselves on bp)
