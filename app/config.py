"""Configuration: every default in one place, read from the environment with strict parsing.

Nothing here runs at import time; ``load()`` is called by ``create_app``. Tests pass overrides
as a plain dict, which win over the environment.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ConfigError(RuntimeError):
    """The configuration is unusable; the app refuses to start."""


# name -> (default, parser). Integers are seconds unless the name says otherwise.
SETTINGS: dict[str, tuple[Any, type]] = {
    "GATEHOUSE_ENV": ("production", str),
    "DATABASE_URL": ("", str),
    "SECRET_KEY": ("", str),
    "GATEHOUSE_ACCESS_TOKEN_TTL": (300, int),
    "GATEHOUSE_REFRESH_GRACE": (30, int),
    "GATEHOUSE_LOST_RESPONSE_WINDOW": (600, int),
    "GATEHOUSE_SESSION_IDLE_TTL": (14 * 24 * 3600, int),
    "GATEHOUSE_SESSION_MAX_AGE": (30 * 24 * 3600, int),
    "GATEHOUSE_ARGON2_TIME_COST": (2, int),
    "GATEHOUSE_ARGON2_MEMORY_KIB": (19 * 1024, int),
    "GATEHOUSE_ARGON2_PARALLELISM": (1, int),
    "GATEHOUSE_LOGIN_LIMIT_ACCOUNT": (10, int),
    "GATEHOUSE_LOGIN_LIMIT_IP": (50, int),
    "GATEHOUSE_LOGIN_LIMIT_WINDOW": (15 * 60, int),
    "GATEHOUSE_SESSION_LIMIT_IP": (100, int),
    "GATEHOUSE_TRUSTED_PROXIES": (0, int),
    "GATEHOUSE_REAUTH_WINDOW": (10 * 60, int),
    "GATEHOUSE_DB_POOL_SIZE": (8, int),
}

# The smallest value that still makes sense; zero would disable a control silently.
MINIMUMS = {
    "GATEHOUSE_ACCESS_TOKEN_TTL": 1, "GATEHOUSE_SESSION_IDLE_TTL": 60,
    "GATEHOUSE_SESSION_MAX_AGE": 60, "GATEHOUSE_ARGON2_TIME_COST": 1,
    "GATEHOUSE_ARGON2_MEMORY_KIB": 8, "GATEHOUSE_ARGON2_PARALLELISM": 1,
    "GATEHOUSE_LOGIN_LIMIT_ACCOUNT": 1, "GATEHOUSE_LOGIN_LIMIT_IP": 1,
    "GATEHOUSE_LOGIN_LIMIT_WINDOW": 1, "GATEHOUSE_SESSION_LIMIT_IP": 1,
    "GATEHOUSE_DB_POOL_SIZE": 1,
}

WEAK_SECRETS = {"", "dev", "secret", "changeme", "change-me", "development", "gatehouse"}
MIN_SECRET_LENGTH = 32


def _parse(name: str, raw: str, kind: type) -> Any:
    if kind is int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if value < 0:
            raise ConfigError(f"{name} must not be negative")
        return value
    return raw


def load(overrides: Mapping[str, Any] | None, instance_path: str, *, debug: bool = False,
         environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Return the full configuration: defaults, then the environment, then ``overrides``.

    ``debug`` is Flask's own debug flag (``FLASK_DEBUG``), refused in production like ``DEBUG``.
    """
    config = {name: default for name, (default, _) in SETTINGS.items()}
    for name, (_, kind) in SETTINGS.items():
        if name in environ:
            config[name] = _parse(name, environ[name], kind)
    config.update(overrides or {})
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'gatehouse.sqlite3'}"
    for name, minimum in MINIMUMS.items():
        if config[name] < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {config[name]}")
    if config["GATEHOUSE_ENV"] not in ("production", "development"):
        raise ConfigError("GATEHOUSE_ENV must be 'production' or 'development'")
    if config["GATEHOUSE_ENV"] == "production" and (debug or config.get("DEBUG")):
        raise ConfigError("debug mode is refused in production: it exposes an interactive console")
    config["SECRET_KEY"] = _secret_key(config, instance_path)
    return config


def _secret_key(config: Mapping[str, Any], instance_path: str) -> str:
    key = config["SECRET_KEY"]
    weak = (key.lower() in WEAK_SECRETS or len(key) < MIN_SECRET_LENGTH
            or len(set(key)) < 8)  # "aaaa…" is long but not random
    if not weak:
        return key
    if config["GATEHOUSE_ENV"] == "production" and not config.get("TESTING"):
        raise ConfigError(
            f"SECRET_KEY is missing or weak: set at least {MIN_SECRET_LENGTH} random characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if key:
        return key
    # Development convenience: a random key kept under instance/ survives restarts.
    path = Path(instance_path) / "dev-secret-key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


# Flask's own settings that Gatehouse fixes: cookie attributes, CSRF, body cap.
FLASK_SETTINGS: dict[str, Any] = {
    "SESSION_COOKIE_NAME": "__Host-flask",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_DOMAIN": None,
    "SESSION_COOKIE_PATH": "/",
    # A CSRF token lives as long as the browser's Flask session, so a form left open over
    # lunch still submits (flask-wtf's default 3600 s limit loses people's input).
    "WTF_CSRF_TIME_LIMIT": None,
    "WTF_CSRF_SSL_STRICT": False,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "MAX_FORM_MEMORY_SIZE": 64 * 1024,
}
