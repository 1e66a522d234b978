"""The product's own apps and any API behind Gatehouse: the published signing keys, the OAuth
endpoints apps sign in through, and the operator's commands for keys and apps."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("apps", __name__)


def init_app(app: Flask) -> None:
    from app.apps import cli, discovery, oauth  # noqa: F401  (their routes register on bp)

    app.register_blueprint(bp)
    cli.init_app(app)
