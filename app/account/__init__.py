"""The signed-in person's pages (account, sessions) and the same-origin JSON for the site's
own scripts."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Flask
from markupsafe import Markup, escape

from app import places, settings
from app.security import csrf
from app.session_rules import END_REASONS, end_reason

bp = Blueprint("account", __name__)
api = Blueprint("api", __name__, url_prefix="/api")

# The history's words: an ended session's event is named by its end reason's label.
EVENT_NAMES = {
    **{reason: words.label for reason, words in END_REASONS.items()},
    "sign_in": "Signed in",
    "sign_in_failed": "Failed sign-in attempt",
    "registered": "Account created",
    "email_verified": "Email address confirmed",
    "email_changed": "Email address changed",
    "password_reset_requested": "Password reset requested",
    "password_changed": "Password changed",
    "csrf_failed": "Refused a form from another site",
    "throttled": "Too many attempts",
    "reauth_failed": "Wrong password when confirming an action",
    "current_password_failed": "Wrong current password on the password or email form",
    "reauthenticated": "Password confirmed for an action",
    "address_changed": "Used from a new address",
    "device_changed": "Used from a different browser",
    "refused_use": "Refused a request with an ended session's cookie",
    "device_named": "Device renamed",
}


def init_app(app: Flask) -> None:
    # JSON calls carry no form token; security.refuse_cross_site demands the custom header
    # and a same-origin request instead.
    csrf.exempt(api)
    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.add_template_filter(when)
    app.add_template_filter(duration)
    app.add_template_filter(moment)
    app.add_template_filter(ago)
    app.add_template_global(places.place)
    app.add_template_global(where)
    app.add_template_global(end_reason)
    app.jinja_env.globals["event_names"] = EVENT_NAMES


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%d %b %Y, %H:%M UTC")


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600),
          ("minute", 60))


def ago(timestamp: float, now: float | None = None) -> str:
    """``timestamp`` in people's terms: "3 minutes ago", "in 29 days", "just now".
    static/moments.js words it the same way when it refreshes the text."""
    seconds = (settings.now() if now is None else now) - timestamp
    for unit, size in _UNITS:
        count = int(abs(seconds) // size)
        if count:
            words = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"{words} ago" if seconds > 0 else f"in {words}"
    return "just now"


def moment(timestamp: float | None) -> Markup:
    """A ``<time>`` element: relative text, the exact UTC time in its ``datetime`` and title.
    static/moments.js shows that time in the reader's own time zone on hover and focus."""
    if timestamp is None:
        return Markup("")
    # Every part is made here from a number: nothing to escape (and this runs ~100 times a page).
    return Markup(f'<time datetime="{iso(timestamp)}" title="{when(timestamp)}" data-moment>'
                  f"{ago(timestamp)}</time>")


def where(ip: str) -> Markup:
    """An address with its approximate place: "8.8.8.8, United States", "10.0.0.2, this
    network", or the address alone when no place is known."""
    if not ip:
        return Markup("an unknown address")
    found = places.place(ip)
    if not found:
        return escape(ip)
    return Markup('{}<span class="place">, {}</span>').format(ip, found)


def duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0 or seconds >= 10 * size:
            count = round(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


from app.account import api_views, views  # noqa: E402,F401  (routes register themselves)
