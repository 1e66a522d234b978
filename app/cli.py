"""Operator commands: ``flask --app wsgi prune`` and ``flask --app wsgi create-user``."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app import accounts, audit, sessions, throttle
from app.auth import settings
from app.middleware import gatehouse, now
from app.passwords import PasswordRejected


def init_app(app: Flask) -> None:
    app.cli.add_command(prune)
    app.cli.add_command(create_user)


@click.command("prune")
@with_appcontext
def prune() -> None:
    """Delete sessions and tokens that ended or expired long ago, stale throttles, and
    security events older than GATEHOUSE_EVENT_RETENTION."""
    at = now()
    removed = sessions.prune(policy=gatehouse().policy, now=at)
    cleared = throttle.prune(at, max_window=accounts.ACCOUNT_CAP_WINDOW)
    events = audit.prune(at, retention=current_app.config["GATEHOUSE_EVENT_RETENTION"])
    click.echo(f"Pruned {removed} sessions, {cleared} throttle entries and {events} events.")


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.password_option(help="Prompted for, twice, when not given.")
def create_user(email: str, password: str) -> None:
    """Create an account with EMAIL (the password follows the same policy as registration)."""
    try:
        accounts.register(email, password, hasher=settings().hasher, now=now(), ip="cli")
    except (accounts.InvalidEmail, PasswordRejected) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {accounts.normalise_email(email)} (if it did not exist already).")
