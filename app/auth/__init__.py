"""The signed-out person's pages: register, sign in and out, a forgotten password, and the
pages behind the links mailed to them."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("auth", __name__)


def init_app(app: Flask) -> None:
    from app.auth import dbsc_views, link_views, views  # noqa: F401  (their routes register on bp)

    app.register_blueprint(bp)
