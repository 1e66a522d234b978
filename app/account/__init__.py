"""The signed-in person's pages (account, credentials, sessions by device, timelines) and the
same-origin JSON for the site's own scripts."""

from __future__ import annotations

from flask import Blueprint, Flask

from app.security import csrf

bp = Blueprint("account", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


def init_app(app: Flask) -> None:
    from app.account import (  # noqa: F401  (their routes register on bp and api)
        api_views,
        closing_views,
        credential_views,
        device_views,
        views,
    )

    # JSON calls carry no form token; security.refuse_cross_site demands the custom header
    # and a same-origin request instead.
    csrf.exempt(api)
    app.register_blueprint(bp)
    app.register_blueprint(api)
