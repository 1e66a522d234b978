"""For reference: Flask-JWT-Extended's ``@jwt_required()`` reading an HS256 access cookie,
returning the same small HTML as the bare route (no revocation check at all)."""

import os

from flask import Flask
from flask_jwt_extended import JWTManager, create_access_token, jwt_required

from bench.bare import index

app = Flask(__name__)
app.config.update(JWT_SECRET_KEY=os.environ.get("SECRET_KEY", "reference-only-secret-0123456789"),
                  JWT_TOKEN_LOCATION=["cookies"], JWT_ACCESS_COOKIE_NAME="access_token_cookie",
                  JWT_COOKIE_CSRF_PROTECT=True)
JWTManager(app)
app.add_url_rule("/", "index", jwt_required()(index))


def access_cookie(identity: str, secret: str) -> str:
    """A Cookie header the reference app, started with ``SECRET_KEY=secret``, accepts."""
    app.config["JWT_SECRET_KEY"] = secret
    with app.app_context():
        return f"access_token_cookie={create_access_token(identity=identity)}"
app.add_url_rule("/healthz", "healthz", lambda: "ok")
