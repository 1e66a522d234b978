"""The signed-in person's pages (account, sessions) and the same-origin JSON for the site's
own scripts."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Flask

from app.security import csrf
from app.session_rules import END_REASONS, end_reason

bp = Blueprint("account", __name__)
api = Blueprint("api", __name__, url_prefix="/api")

# The history's words: an ended session's event is named by its end reason's label.
EVENT_NAMES = {
    **{reason: words.label for reason, words in END_REASONS.items()},
    "sign_in": "Signed in",
    "sign_in_failed": "Failed sign-in attempt",
    "reauth_failed": "Wrong password when confirming it was you",
    "password_change_failed": "Wrong current password on the password form",
    "reauthenticated": "Confirmed it was you with the password",
    "registered": "Account created",
    "email_verified": "Email address confirmed",
    "email_changed": "Email address changed",
    "password_reset_requested": "Password reset requested",
    "password_changed": "Password changed",
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
    app.add_template_global(end_reason)
    app.jinja_env.globals["event_names"] = EVENT_NAMES


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
