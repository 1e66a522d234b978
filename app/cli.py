"""Operator commands: ``flask --app wsgi prune`` and ``flask --app wsgi create-user``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from app import accounts, recovery, sessions, throttle
from app.auth import settings
from app.middleware import gatehouse, now
from app.passwords import PasswordRejected


def init_app(app: Flask) -> None:
    app.cli.add_command(prune)
    app.cli.add_command(create_user)


@click.command("prune")
@with_appcontext
def prune() -> None:
    """Delete sessions and tokens that ended or expired long ago, and stale throttles."""
    at = now()
    removed = sessions.prune(policy=gatehouse().policy, now=at)
    cleared = throttle.prune(at, max_window=settings().throttles.window)
    click.echo(f"Pruned {removed} sessions and {cleared} throttle entries.")


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.password_option(help="Prompted for, twice, when not given.")
def create_user(email: str, password: str) -> None:
    """Create an account with EMAIL (the password follows the same policy as registration)."""
    at = now()
    try:
        # The operator vouches for the address: no verification mail, and it can sign in.
        accounts.register(email, password, hasher=settings().hasher, now=at, ip="cli",
                          then=lambda user: user and recovery.mark_verified(user.id, now=at))
    except (accounts.InvalidEmail, PasswordRejected) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {accounts.normalise_email(email)} (if it did not exist already).")
