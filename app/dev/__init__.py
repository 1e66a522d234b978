"""The QA kit, development only (``GATEHOUSE_ENV=development``): in production none of these
routes exists (404).

``/dev/mail`` and ``/dev/mail.json?to=`` read the development outbox (``instance/outbox/``);
``/dev/session`` shows this browser's session with four buttons, and ``POST
/dev/sessions/<id>/<action>`` does the same for a suite. Each action changes what the server
holds the way time or a thief would, and then the real middleware, rules and store judge the
next request as in production: nothing here is a shortcut they know of.

* ``expire-access``: the browser's access cookie goes, as its ``Max-Age`` running out would
  (the next request rotates). This browser's own session only.
* ``idle``, ``max-age``: the session's last activity, or its absolute end, moves into the past
  (``store.age``); its next request ends it with that reason.
* ``replay``: this browser's value is rotated as its own request would, the rotation is aged
  past every window that forgives a superseded value, and the previous value is presented
  from another address and browser, as a thief holding a copy would: reuse detection.
"""

from __future__ import annotations

from flask import Blueprint, Flask, request

from app.security import JSON_HEADER, csrf

bp = Blueprint("dev", __name__, url_prefix="/dev")


def init_app(app: Flask) -> None:
    if app.config["GATEHOUSE_ENV"] != "development":
        return  # production: no such route
    from app.dev import views  # noqa: F401 - registers the routes on bp

    csrf.exempt(bp)  # a form's token, or the JSON header: checked below
    app.register_blueprint(bp)


@bp.before_request
def _token_or_header() -> None:
    """A suite sends ``X-Gatehouse-Request: 1`` (which a cross-site page cannot); the buttons
    of ``/dev/session`` send their form's CSRF token. The same-origin check runs anyway."""
    if request.method == "POST" and request.headers.get(JSON_HEADER) != "1":
        csrf.protect()
