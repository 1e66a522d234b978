"""Accounts blueprint: register, sign in, sign out, change password."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, current_app

from app import accounts, middleware, sessions
from app.accounts import Throttles
from app.passwords import Argon2Profile, Hasher

bp = Blueprint("auth", __name__)


@dataclass(frozen=True)
class AccountSettings:
    hasher: Hasher
    throttles: Throttles
    reauth_window: int


def init_app(app: Flask) -> None:
    config = app.config
    app.extensions["gatehouse_accounts"] = AccountSettings(
        hasher=Hasher(Argon2Profile(config["GATEHOUSE_ARGON2_TIME_COST"],
                                    config["GATEHOUSE_ARGON2_MEMORY_KIB"],
                                    config["GATEHOUSE_ARGON2_PARALLELISM"])),
        throttles=Throttles(config["GATEHOUSE_LOGIN_LIMIT_ACCOUNT"],
                            config["GATEHOUSE_LOGIN_LIMIT_IP"],
                            config["GATEHOUSE_LOGIN_LIMIT_WINDOW"]),
        reauth_window=config["GATEHOUSE_REAUTH_WINDOW"],
    )
    app.register_blueprint(bp)


def settings() -> AccountSettings:
    return current_app.extensions["gatehouse_accounts"]


def reauth_due() -> bool:
    """Sensitive actions ask for the password again once the last sign-in is this old."""
    principal = middleware.auth().principal
    return middleware.now() - principal.authenticated_at > settings().reauth_window


def confirm_password(password: str | None) -> bool:
    """True when no re-authentication is due, or ``password`` is the signed-in person's own.

    Failures count against the same throttles as sign-in.
    """
    if not reauth_due():
        return True
    principal, at = middleware.auth().principal, middleware.now()
    user = accounts.verify_current(principal.user_id, password or "", hasher=settings().hasher,
                                   limits=settings().throttles, now=at,
                                   ip=middleware.client_ip())
    if user is not None:
        sessions.reauthenticated(principal.session_id, now=at)
    return user is not None


from app.auth import mail_views, views  # noqa: E402,F401  (routes register themselves on bp)
