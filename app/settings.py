"""Everything configured, built once per app into one typed object.

``create_app`` builds it from the parsed configuration; views, the middleware and the CLI read
it with ``current()``. A new setting is one field here and one line in ``build``, with its
default and environment parsing in ``config.SETTINGS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from app import config, tokens
from app.passwords import Argon2Profile, Hasher
from app.session_rules import Policy
from app.throttle import Throttles

ISSUER = "gatehouse"  # the access token's ``iss`` and ``aud``


@dataclass(frozen=True)
class Settings:
    keys: tokens.Keys
    policy: Policy
    clock: Callable[[], float]
    hasher: Hasher
    throttles: Throttles
    reauth_window: int  # sensitive actions ask for the password once sign-in is this old
    event_retention: int  # prune deletes security events older than this
    cookie: Mapping[str, Any]  # attributes of every cookie set, and of its deletion
    public_url: str  # the origin every link in a mail starts with, never the Host header
    email_verification: bool  # accounts sign in once their address is confirmed
    password_reset_ttl: int


def build(values: Mapping[str, Any]) -> Settings:
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
        email_verification=values["GATEHOUSE_EMAIL_VERIFICATION"] == "required",
        password_reset_ttl=values["GATEHOUSE_PASSWORD_RESET_TTL"],
    )


def init_app(app: Flask) -> None:
    app.extensions["gatehouse"] = build(app.config)


def current() -> Settings:
    settings: Settings = current_app.extensions["gatehouse"]
    return settings


def now() -> float:
    return current().clock()
