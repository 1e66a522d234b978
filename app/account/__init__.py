"""The signed-in person's pages (account, sessions) and the same-origin JSON for the site's
own scripts."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Flask

from app import sessions
from app.security import csrf

bp = Blueprint("account", __name__)
api = Blueprint("api", __name__, url_prefix="/api")

END_REASONS = {
    sessions.SIGNED_OUT: "Signed out",
    sessions.REVOKED: "Signed out by you",
    sessions.REVOKED_OTHERS: "Signed out by you (all other sessions)",
    sessions.PASSWORD_CHANGED: "Password changed",
    sessions.REUSE_DETECTED: "A reused token was detected",
    sessions.PASSWORD_RESET: "Password reset",
    sessions.NOT_ME: "Ended from a \"This wasn't me\" mail",
    sessions.IDLE_TIMEOUT: "Inactive too long",
    sessions.EXPIRED: "Reached its maximum age",
}
EVENT_NAMES = {
    **END_REASONS,
    "sign_in": "Signed in",
    "sign_in_failed": "Failed sign-in attempt",
    "registered": "Account created",
    "password_changed": "Password changed",
    "email_verified": "Email address confirmed",
    "email_changed": "Email address changed",
    "password_reset_requested": "Password reset requested",
    "csrf_failed": "Refused a form from another site",
    "throttled": "Too many attempts",
}


def init_app(app: Flask) -> None:
    # JSON calls carry no form token; security.refuse_cross_site demands the custom header
    # and a same-origin request instead.
    csrf.exempt(api)
    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.add_template_filter(when)
    app.add_template_filter(duration)
    app.add_template_global(END_REASONS, "reasons")
    app.add_template_global(EVENT_NAMES, "event_names")


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%d %b %Y, %H:%M UTC")


def duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0 or seconds >= 10 * size:
            count = round(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


from app.account import api_views, views  # noqa: E402,F401  (routes register themselves)
