"""Pages for anyone: the start page, and the health check load balancers poll."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template

from app.db import UNAVAILABLE, database

bp = Blueprint("home", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.route("/")
def index() -> str:
    return render_template("index.html")


@bp.route("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    """200 when the database answers, 503 when it does not (for load balancers)."""
    try:
        database.execute_sql("SELECT 1")
    except UNAVAILABLE:
        return {"status": "unavailable"}, 503
    return {"status": "ok"}, 200
