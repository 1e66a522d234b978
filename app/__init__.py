"""Gatehouse: a Flask backend-for-frontend that signs people in with short-lived access tokens,
server-side refresh tokens and a sessions page."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from weakref import WeakKeyDictionary

from flask import Flask

from app import (
    account,
    alerts,
    apps,
    auth,
    cli,
    config,
    db,
    dev,
    errors,
    home,
    lazysession,
    liveness,
    logs,
    mail,
    middleware,
    security,
    settings,
    templating,
)
from app.recovery import unlock


class Gatehouse(Flask):
    """Flask, for an app whose views and hooks are all synchronous."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Weak: a callable made per request (a bound method) is not kept alive by it.
        self._synced: WeakKeyDictionary[Callable[..., Any], Callable[..., Any]] = \
            WeakKeyDictionary()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # Flask asks ``inspect`` whether each hook and view is a coroutine function on every
        # request (seven times for a signed-in page); the answer is kept.
        synced = self._synced.get(func)
        if synced is None:
            synced = self._synced[func] = super().ensure_sync(func)
        return synced


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    app = Gatehouse(__name__, instance_relative_config=True, template_folder="../templates",
                static_folder="../static")
    app.config.update(config.FLASK_SETTINGS)
    app.config.update(config.load(overrides, app.instance_path, debug=app.debug))
    settings.init_app(app)

    db.init_app(app)
    liveness.init_app(app)
    lazysession.init_app(app)
    # Authentication opens before the CSRF and same-origin checks, so that a refused request
    # is recorded against the person it was aimed at.
    middleware.init_app(app)
    security.init_app(app)
    logs.init_app(app)  # outermost: its request id and timing cover the whole request
    errors.init_app(app)
    mail.init_app(app)
    alerts.init_app(app)
    unlock.init_app(app)
    templating.init_app(app)
    cli.init_app(app)
    home.init_app(app)
    auth.init_app(app)
    account.init_app(app)
    apps.init_app(app)
    dev.init_app(app)  # development only: the QA kit
    middleware.note_credential_free(app)  # every blueprint is in
    return app
