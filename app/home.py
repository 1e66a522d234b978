"""Pages for anyone: the start page, and the health check load balancers poll."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request

from app import metrics
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


@bp.route("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus' text format, for a scraper holding ``GATEHOUSE_METRICS_TOKEN`` as a bearer
    token; 404 when that is unset (no metrics served), 401 for any other request."""
    token = current_app.config["GATEHOUSE_METRICS_TOKEN"]
    if not token:
        abort(404)
    presented = request.headers.get("Authorization", "")
    if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
        return Response("Unauthorized\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'},
                        mimetype="text/plain")
    body, content_type = metrics.exposition()
    return Response(body, 200, content_type=content_type)
