"""Operator commands: ``prune``, ``create-user``, ``migrate`` (and ``send-mail``, in
``app.mail``).

Every failure is one line on stderr and exit status 1 (click's ``Error: ...``), never a
traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask
from flask.cli import with_appcontext

from app import (
    audit,
    devicekeys,
    grants,
    migrations,
    passkeys,
    proofs,
    settings,
    throttle,
    twostep,
    users,
)
from app.config import ACCOUNT_CAP_WINDOW, ConfigError
from app.models import User
from app.passwords import PasswordRejected
from app.recovery import registration
from app.sessions import store


def init_app(app: Flask) -> None:
    app.cli.add_command(prune)
    app.cli.add_command(create_user)
    app.cli.add_command(migrate)


@contextmanager
def config_errors_reported() -> Iterator[None]:
    """Around ``create_app`` in ``wsgi.py``: under the ``flask`` command a ConfigError is one
    line and exit 1. Under a WSGI server it is raised as it is, so the worker fails to boot
    and the server stops rather than restarting it forever."""
    try:
        yield
    except ConfigError as error:
        if click.get_current_context(silent=True) is None:
            raise
        raise click.ClickException(str(error)) from None


@click.command("prune")
@with_appcontext
def prune() -> None:
    """Delete sessions and tokens that ended or expired long ago, stale throttles, security
    events older than GATEHOUSE_EVENT_RETENTION, expired key challenges, and apps' expired
    codes and DPoP proofs."""
    config = settings.current()
    at = config.clock()
    removed = store.prune(policy=config.policy, now=at)
    cleared = throttle.prune(at, max_window=ACCOUNT_CAP_WINDOW)
    events = audit.prune(at, retention=config.event_retention)
    challenges = devicekeys.prune(now=at)
    passkeys.prune(at)  # passkey challenges nobody answered
    twostep.prune(at)  # sign-ins that never got their code
    used = grants.prune(at) + proofs.prune(at)
    click.echo(f"Pruned {removed} sessions, {cleared} throttle entries, {events} events, "
               f"{challenges} expired key challenges and {used} used codes and proofs.")


@click.command("migrate")
@with_appcontext
def migrate() -> None:
    """Bring the schema to its newest version (every start does; run this first when an
    upgrade may outlast gunicorn's worker timeout)."""
    click.echo(f"The schema is at version {migrations.upgrade()}.")


def _vouch_for(user: User | None, at: float) -> None:
    """The operator vouches for the address: no verification mail, and it can sign in."""
    if user is not None:
        registration.mark_verified(user.id, now=at)


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.password_option(help="Prompted for, twice, when not given.")
def create_user(email: str, password: str) -> None:
    """Create an account with EMAIL (the password follows the same policy as registration)."""
    config = settings.current()
    at = config.clock()
    try:
        created = users.register(email, password, hasher=config.hasher, now=at, ip="cli",
                                 then=lambda user: _vouch_for(user, at))
    except (users.InvalidEmail, PasswordRejected) as exc:
        raise click.ClickException(str(exc)) from None
    address = users.normalise_email(email)
    if not created:
        raise click.ClickException(f"{address} already has an account: nothing was created.")
    click.echo(f"Created {address}.")
