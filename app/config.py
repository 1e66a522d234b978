"""Configuration: every default in one place, read from the environment with strict parsing.

Nothing here runs at import time; ``load()`` is called by ``create_app``. Tests pass overrides
as a plain dict, which win over the environment. ``app.settings`` turns the result into the
typed objects the rest of the app uses.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


class ConfigError(RuntimeError):
    """The configuration is unusable; the app refuses to start."""


@dataclass(frozen=True)
class Setting:
    """One environment setting. ``minimum`` is the smallest value that still makes sense: zero
    would disable a control silently."""

    default: Any
    kind: type = int  # integers are seconds unless the name says otherwise
    minimum: int | None = None


SETTINGS: dict[str, Setting] = {
    "GATEHOUSE_ENV": Setting("production", str),
    "DATABASE_URL": Setting("", str),
    "SECRET_KEY": Setting("", str),
    # Earlier SECRET_KEYs, comma-separated: what they signed or encrypted is still accepted.
    "GATEHOUSE_SECRET_KEY_FALLBACKS": Setting("", str),
    "GATEHOUSE_KEY_PUBLISH_AHEAD": Setting(600),
    "GATEHOUSE_ACCESS_TOKEN_TTL": Setting(300, minimum=1),
    "GATEHOUSE_REFRESH_GRACE": Setting(30),
    "GATEHOUSE_LOST_RESPONSE_WINDOW": Setting(600),
    "GATEHOUSE_SESSION_IDLE_TTL": Setting(14 * 24 * 3600, minimum=60),
    "GATEHOUSE_SESSION_MAX_AGE": Setting(30 * 24 * 3600, minimum=60),
    "GATEHOUSE_ARGON2_TIME_COST": Setting(2, minimum=1),
    "GATEHOUSE_ARGON2_MEMORY_KIB": Setting(19 * 1024, minimum=8),
    "GATEHOUSE_ARGON2_PARALLELISM": Setting(1, minimum=1),
    "GATEHOUSE_LOGIN_LIMIT_ACCOUNT": Setting(10, minimum=1),
    "GATEHOUSE_LOGIN_LIMIT_IP": Setting(50, minimum=1),
    "GATEHOUSE_LOGIN_LIMIT_WINDOW": Setting(15 * 60, minimum=1),
    "GATEHOUSE_SESSION_LIMIT_IP": Setting(100, minimum=1),
    "GATEHOUSE_REGISTER_LIMIT_IP": Setting(10, minimum=1),
    "GATEHOUSE_MAX_SESSIONS_PER_USER": Setting(100, minimum=1),
    "GATEHOUSE_EVENT_RETENTION": Setting(90 * 24 * 3600, minimum=24 * 3600),
    "GATEHOUSE_TRUSTED_PROXIES": Setting(0),
    "GATEHOUSE_REAUTH_WINDOW": Setting(10 * 60),
    "GATEHOUSE_DB_POOL_SIZE": Setting(8, minimum=1),
    "GATEHOUSE_REMEMBERED_SESSIONS": Setting(20_000),
    "GATEHOUSE_PUBLIC_URL": Setting("", str),
    "GATEHOUSE_SMTP_URL": Setting("", str),
    "GATEHOUSE_MAIL_FROM": Setting("", str),
    "GATEHOUSE_EMAIL_VERIFICATION": Setting("required", str),
    "GATEHOUSE_PASSWORD_RESET_TTL": Setting(1800, minimum=60),
    "GATEHOUSE_DEVICE_BOUND_SESSIONS": Setting("on", str),
    "GATEHOUSE_LOG_LEVEL": Setting("INFO", str),
    "GATEHOUSE_LOG_FORMAT": Setting("text", str),
    "GATEHOUSE_METRICS_TOKEN": Setting("", str),
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
MIN_METRICS_TOKEN_LENGTH = 16

# Fixed limits: not settings, but every number that bounds what a request or a person can do
# is named here, once.
LAST_ACTIVE_RESOLUTION = 60  # "last active" is written at most this often per session
REFUSED_DETAIL = 20  # refused uses of an ended session recorded one by one; then a count
CHANGES_NOTED = 50  # a session's changes of address or browser recorded as events
PAGE_SIZE = 20  # rows on one page of any list
MAX_PAGE = 50  # with PAGE_SIZE, the most rows any list request reads past
KEEP_ENDED = 30 * 24 * 3600  # prune keeps an ended session this long, to say why it ended
RECENTLY_ENDED = 7 * 24 * 3600  # the sessions page lists sessions that ended this recently
ENDED_SHOWN = 3  # ended sessions shown before "Show … more"
DEVICE_MAX_AGE = 365 * 24 * 3600  # the device cookie's lifetime
ACCOUNT_FAILURE_CAP = 100  # NIST SP 800-63B 5.2.2: consecutive failures an account takes
ACCOUNT_CAP_WINDOW = 30 * 24 * 3600
# A password check over the limit only because of checks still in flight waits this long (real
# seconds) for them to land; one admitted this long ago (app clock) belonged to a dead worker.
IN_FLIGHT_WAIT = 10
IN_FLIGHT_STALE = 60
ANONYMOUS_WINDOW = 3600  # refusals of nobody's account are counted per address and hour
VERIFY_TTL = 3 * 24 * 3600  # a verification link: long enough to find it after a weekend
UNDO_EMAIL_TTL = 7 * 24 * 3600  # the old address may undo a change of address for a week
RESET_LIMIT_IP = 10  # reset requests per client address per login window (429 beyond)
RESET_COMPARISONS = 5  # new passwords one reset link may compare with the current one
MAILS_PER_ACCOUNT = 3  # mails of one kind to one account, and to one address, per hour
UNLOCK_TTL = 24 * 3600  # the link mailed when failures lock an account
MAIL_WINDOW = 3600
KEY_CHALLENGE_TTL = 300  # a DBSC challenge is answered within this, or not at all
KEY_CHALLENGES_KEPT = 8  # unanswered challenges per session (parallel refreshes); then reused
ALERTS_PER_HOUR = 5  # new-sign-in mails per account per MAIL_WINDOW; the rest in one summary
CHALLENGE_TTL = 300  # a WebAuthn challenge is answered within this, once
PENDING_SIGN_IN_TTL = 300  # a password accepted for two-step sign-in waits this long for a code
RECOVERY_CODES = 10  # shown once when two-step sign-in is turned on

# Where links point in development when GATEHOUSE_PUBLIC_URL is not set: the quick start's.
DEV_PUBLIC_URL = "http://localhost:5000"

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
    config = {name: setting.default for name, setting in SETTINGS.items()}
    for name, setting in SETTINGS.items():
        if name in environ:
            config[name] = _parse(name, environ[name], setting.kind)
    config.update(overrides or {})
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'gatehouse.sqlite3'}"
    for name, setting in SETTINGS.items():
        if setting.minimum is not None and config[name] < setting.minimum:
            raise ConfigError(f"{name} must be at least {setting.minimum}, got {config[name]}")
    if config["GATEHOUSE_DEVICE_BOUND_SESSIONS"] not in ("on", "off"):
        raise ConfigError("GATEHOUSE_DEVICE_BOUND_SESSIONS must be 'on' or 'off'")
    if config["GATEHOUSE_ENV"] not in ("production", "development"):
        raise ConfigError("GATEHOUSE_ENV must be 'production' or 'development'")
    if config["GATEHOUSE_ENV"] == "production" and (debug or config.get("DEBUG")):
        raise ConfigError("debug mode is refused in production: it exposes an interactive console")
    config["SECRET_KEY"] = _secret_key(config, instance_path)
    fallbacks = config["GATEHOUSE_SECRET_KEY_FALLBACKS"]
    if isinstance(fallbacks, str):
        fallbacks = [part.strip() for part in fallbacks.split(",") if part.strip()]
    config["SECRET_KEY_FALLBACKS"] = list(fallbacks)  # Flask's own, for its signed cookie
    _check_mail(config)
    _check_operations(config)
    return config


def _check_operations(config: dict[str, Any]) -> None:
    config["GATEHOUSE_LOG_LEVEL"] = str(config["GATEHOUSE_LOG_LEVEL"]).upper()
    if config["GATEHOUSE_LOG_LEVEL"] not in LOG_LEVELS:
        raise ConfigError(f"GATEHOUSE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    if config["GATEHOUSE_LOG_FORMAT"] not in LOG_FORMATS:
        raise ConfigError("GATEHOUSE_LOG_FORMAT must be 'text' or 'json'")
    token = config["GATEHOUSE_METRICS_TOKEN"]
    if token and len(token) < MIN_METRICS_TOKEN_LENGTH:
        raise ConfigError(f"GATEHOUSE_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} "
                          "characters (or unset, which turns /metrics off)")


def _check_mail(config: dict[str, Any]) -> None:
    """Links in mail are built from the public URL alone (never from a request's Host header),
    so production must name it; and verification that cannot send a mail would lock everyone
    out, so it needs a mail server."""
    if config["GATEHOUSE_EMAIL_VERIFICATION"] not in ("required", "off"):
        raise ConfigError("GATEHOUSE_EMAIL_VERIFICATION must be 'required' or 'off'")
    production = config["GATEHOUSE_ENV"] == "production"
    if production and config["GATEHOUSE_EMAIL_VERIFICATION"] == "required":
        missing = [name for name in ("GATEHOUSE_SMTP_URL", "GATEHOUSE_PUBLIC_URL")
                   if not config[name]]
        if missing:
            raise ConfigError(f"GATEHOUSE_EMAIL_VERIFICATION=required needs {' and '.join(missing)}"
                              " in production (or set GATEHOUSE_EMAIL_VERIFICATION=off)")
    # Development without a public URL: a mail's links start with the origin of the request
    # that caused it when that is this computer (any port), else with DEV_PUBLIC_URL.
    config["GATEHOUSE_LINKS_FROM_REQUEST"] = not production and not config["GATEHOUSE_PUBLIC_URL"]
    url = config["GATEHOUSE_PUBLIC_URL"] or ("" if production else DEV_PUBLIC_URL)
    parts = urlsplit(url)
    if url and (parts.scheme not in ("http", "https") or not parts.hostname
                or parts.path.strip("/") or parts.query or parts.fragment):
        raise ConfigError(f"GATEHOUSE_PUBLIC_URL must be an origin like https://example.com, "
                          f"got {url!r}")
    config["GATEHOUSE_PUBLIC_URL"] = url.rstrip("/")


def _secret_key(config: Mapping[str, Any], instance_path: str) -> str:
    key: str = config["SECRET_KEY"]
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


SMTP_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str  # smtp (plain), smtp+starttls, smtps (TLS from the first byte)
    host: str
    port: int
    username: str = ""
    password: str = ""

    def __repr__(self) -> str:  # never the password, wherever this object is printed
        user = f"{self.username}@" if self.username else ""
        return f"SmtpTarget({self.scheme}://{user}{self.host}:{self.port})"


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://[user:password@]host[:port]``, ``smtp+starttls://...`` or ``smtps://...``;
    user and password are percent-decoded (a password may contain ``@`` as ``%40``)."""
    parts = urlsplit(url)
    if parts.scheme not in SMTP_PORTS:
        raise ValueError("GATEHOUSE_SMTP_URL must start with smtp://, smtp+starttls:// or "
                         "smtps://")
    try:
        port = parts.port or SMTP_PORTS[parts.scheme]
    except ValueError:
        raise ValueError("GATEHOUSE_SMTP_URL has an invalid port") from None
    if not parts.hostname or parts.path.strip("/") or parts.query:
        raise ValueError("GATEHOUSE_SMTP_URL must be scheme://[user:password@]host:port")
    return SmtpTarget(parts.scheme, parts.hostname, port, unquote(parts.username or ""),
                      unquote(parts.password or ""))



# Every cookie Gatehouse sets (the auth cookies and Flask's own) has these attributes, so that a
# deletion always matches what was set. ``__Host-`` names require exactly these.
COOKIE_ATTRIBUTES: dict[str, Any] = {
    "path": "/", "domain": None, "secure": True, "httponly": True, "samesite": "Lax",
}

# Flask's own settings that Gatehouse fixes: cookie attributes, CSRF, body cap.
FLASK_SETTINGS: dict[str, Any] = {
    "SESSION_COOKIE_NAME": "__Host-flask",
    **{f"SESSION_COOKIE_{name.upper()}": value for name, value in COOKIE_ATTRIBUTES.items()},
    # A CSRF token lives as long as the browser's Flask session, so a form left open over
    # lunch still submits (flask-wtf's default 3600 s limit loses people's input).
    "WTF_CSRF_TIME_LIMIT": None,
    "WTF_CSRF_SSL_STRICT": False,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "MAX_FORM_MEMORY_SIZE": 64 * 1024,
}
