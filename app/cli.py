"""Operator commands: ``prune``, ``create-user``, ``migrate``, ``users show|lock|unlock``,
``sessions list|end-all`` (and ``send-mail``, in ``app.mail``).

Every failure is one line on stderr and exit status 1 (click's ``Error: ...``), never a
traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from app import (
    admin,
    audit,
    devicekeys,
    grants,
    mail,
    migrations,
    passkeys,
    proofs,
    settings,
    throttle,
    twostep,
    users,
    words,
)
from app.config import ACCOUNT_CAP_WINDOW, ConfigError
from app.models import User
from app.passwords import PasswordRejected
from app.recovery import registration
from app.sessions import queries, store


def init_app(app: Flask) -> None:
    app.cli.add_command(prune)
    app.cli.add_command(create_user)
    app.cli.add_command(migrate)
    app.cli.add_command(users_group)
    app.cli.add_command(sessions_group)


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


users_group = AppGroup("users", help="Show, lock and unlock an account.")
sessions_group = AppGroup("sessions", help="List and end a person's sessions.")


@contextmanager
def acting_on(email: str) -> Iterator[tuple[User, float]]:
    """The account with ``email`` and the time, inside a request context on the public URL
    (the mails' links are built from it); what was queued is sent before the command ends
    (a failure is retried by the server's sender)."""
    config = settings.current()
    try:
        user = admin.find(email)
    except admin.NoSuchAccount as exc:
        raise click.ClickException(str(exc)) from None
    with current_app.test_request_context("/", base_url=config.public_url or None):
        yield user, config.clock()
    mail.send_pending(current_app._get_current_object())  # type: ignore[attr-defined]


@users_group.command("show")
@click.argument("email")
def show_user(email: str) -> None:
    """Print the account with EMAIL: its state and its live sessions."""
    with acting_on(email) as (user, at):
        click.echo(_describe(user))
        _list_sessions(user, at)


def _describe(user: User) -> str:
    state = (f"locked since {words.when(user.locked_at)}: {user.locked_reason}"
             if user.locked_at is not None else "active")
    confirmed = words.when(user.email_verified_at) if user.email_verified_at else "not yet"
    return (f"{user.email} (id {user.public_id}): {state}; created {words.when(user.created_at)}"
            f", address confirmed {confirmed}")


def _list_sessions(user: User, at: float) -> None:
    page = queries.list_active(user.id, policy=settings.current().policy, now=at)
    click.echo(f"{words.plural(len(page.items), 'live session')}"
               f"{' (the 20 most recent)' if page.has_next else ''}")
    for session in page.items:
        name = session.chosen_name or session.last_device_name or session.device_name
        click.echo(f"  {session.public_id}  {name}  {session.last_ip_address}  last active "
                   f"{words.ago(session.last_active_at, at)}")


@users_group.command("lock")
@click.argument("email")
@click.option("--reason", required=True, help="Why; mailed to the person.")
def lock_user(email: str, reason: str) -> None:
    """Lock the account with EMAIL and end every session of it."""
    with acting_on(email) as (user, at):
        ended = admin.lock(user, reason, now=at)
    click.echo(f"Locked {user.email}; ended {words.plural(ended.sessions, 'session')}.")


@users_group.command("unlock")
@click.argument("email")
def unlock_user(email: str) -> None:
    """Unlock the account with EMAIL."""
    with acting_on(email) as (user, at):
        changed = admin.unlock(user, now=at)
    click.echo(f"Unlocked {user.email}." if changed else f"{user.email} was not locked.")


@sessions_group.command("list")
@click.argument("email")
def list_sessions(email: str) -> None:
    """List the live sessions of the account with EMAIL."""
    with acting_on(email) as (user, at):
        _list_sessions(user, at)


@sessions_group.command("end-all")
@click.argument("email")
def end_all_sessions(email: str) -> None:
    """End every session of the account with EMAIL (the person may sign in again)."""
    with acting_on(email) as (user, at):
        ended = admin.end_all(user, now=at)
    click.echo(f"Ended {words.plural(ended.sessions, 'session')} of {user.email}.")
