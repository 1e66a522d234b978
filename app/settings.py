"""Everything configured, built once per app into one typed object.

``create_app`` builds it from the parsed configuration (``config.load``); every module reads
it with ``current()`` (or ``of(app)`` at start), never ``app.config``. A new setting is one
field here and one line in ``build``, with its default and parsing in ``config.SETTINGS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app

from app import config, tokens
from app.config import SmtpTarget, parse_smtp_url
from app.limits import Throttles
from app.passwords import Argon2Profile, Hasher
from app.sessions.rules import Policy

ISSUER = "gatehouse"  # the access token's ``iss`` and ``aud``


@dataclass(frozen=True)
class Mail:
    """Where mail goes: an SMTP server, a development outbox directory, or nowhere."""

    smtp: SmtpTarget | None
    outbox_dir: Path | None  # development without a server: .eml files (and the log)
    sender: str
    domain: str  # of the public URL: the From address and every Message-ID

    @property
    def sends(self) -> bool:
        return self.smtp is not None or self.outbox_dir is not None


@dataclass(frozen=True)
class Settings:
    keys: tokens.Keys
    policy: Policy
    clock: Callable[[], float]
    hasher: Hasher
    throttles: Throttles
    reauth_window: int  # sensitive actions ask for a new proof once the last is this old
    event_retention: int  # prune deletes security events older than this
    cookie: Mapping[str, Any]  # attributes of every cookie set, and of its deletion
    public_url: str  # the origin every link in a mail starts with, never the Host header
    # Development without GATEHOUSE_PUBLIC_URL: links start with a loopback request's origin.
    links_from_request: bool
    email_verification: bool  # accounts sign in once their address is confirmed
    password_reset_ttl: int
    mail: Mail
    database_url: str
    db_pool_size: int  # connections per worker process
    trusted_proxies: int  # reverse proxies in front whose X-Forwarded-* is believed
    remembered_sessions: int  # sessions whose liveness each worker remembers
    device_bound_sessions: bool  # sign-ins over HTTPS offer DBSC registration


def build(values: Mapping[str, Any], instance_path: str) -> Settings:
    """``values`` is ``config.load``'s result (``GATEHOUSE_CLOCK`` may replace the clock)."""
    return Settings(
        keys=tokens.Keys.derive(values["SECRET_KEY"]),
        policy=Policy(issuer=ISSUER, access_ttl=values["GATEHOUSE_ACCESS_TOKEN_TTL"],
                      grace=values["GATEHOUSE_REFRESH_GRACE"],
                      lost_response_window=values["GATEHOUSE_LOST_RESPONSE_WINDOW"],
                      idle_ttl=values["GATEHOUSE_SESSION_IDLE_TTL"],
                      max_age=values["GATEHOUSE_SESSION_MAX_AGE"],
                      max_sessions=values["GATEHOUSE_MAX_SESSIONS_PER_USER"]),
        clock=values.get("GATEHOUSE_CLOCK", time.time),
        hasher=Hasher(Argon2Profile(values["GATEHOUSE_ARGON2_TIME_COST"],
                                    values["GATEHOUSE_ARGON2_MEMORY_KIB"],
                                    values["GATEHOUSE_ARGON2_PARALLELISM"])),
        throttles=Throttles(per_account=values["GATEHOUSE_LOGIN_LIMIT_ACCOUNT"],
                            per_ip=values["GATEHOUSE_LOGIN_LIMIT_IP"],
                            window=values["GATEHOUSE_LOGIN_LIMIT_WINDOW"],
                            unknown_sessions_per_ip=values["GATEHOUSE_SESSION_LIMIT_IP"],
                            register_per_ip=values["GATEHOUSE_REGISTER_LIMIT_IP"]),
        reauth_window=values["GATEHOUSE_REAUTH_WINDOW"],
        event_retention=values["GATEHOUSE_EVENT_RETENTION"],
        cookie=config.COOKIE_ATTRIBUTES,
        public_url=values["GATEHOUSE_PUBLIC_URL"],
        links_from_request=values.get("GATEHOUSE_LINKS_FROM_REQUEST", False),
        email_verification=values["GATEHOUSE_EMAIL_VERIFICATION"] == "required",
        password_reset_ttl=values["GATEHOUSE_PASSWORD_RESET_TTL"],
        mail=_mail(values, instance_path),
        database_url=values["DATABASE_URL"],
        db_pool_size=values["GATEHOUSE_DB_POOL_SIZE"],
        trusted_proxies=values["GATEHOUSE_TRUSTED_PROXIES"],
        remembered_sessions=values["GATEHOUSE_REMEMBERED_SESSIONS"],
        device_bound_sessions=values["GATEHOUSE_DEVICE_BOUND_SESSIONS"] == "on",
    )


def _mail(values: Mapping[str, Any], instance_path: str) -> Mail:
    domain = urlsplit(values["GATEHOUSE_PUBLIC_URL"]).hostname or "localhost"
    smtp = None
    if values["GATEHOUSE_SMTP_URL"]:
        try:
            smtp = parse_smtp_url(values["GATEHOUSE_SMTP_URL"])
        except ValueError as exc:
            raise config.ConfigError(str(exc)) from None
    development = values["GATEHOUSE_ENV"] == "development"
    outbox = Path(instance_path) / "outbox" if development and smtp is None else None
    return Mail(smtp=smtp, outbox_dir=outbox, domain=domain,
                sender=values["GATEHOUSE_MAIL_FROM"] or f"Gatehouse <no-reply@{domain}>")


def init_app(app: Flask) -> None:
    app.extensions["gatehouse"] = build(app.config, app.instance_path)


def of(app: Flask) -> Settings:
    settings: Settings = app.extensions["gatehouse"]
    return settings


def current() -> Settings:
    settings: Settings = current_app.extensions["gatehouse"]
    return settings


def now() -> float:
    return current().clock()
