"""Operator commands: ``keys rotate``, ``keys list``; ``clients add``, ``list``, ``remove``."""

from __future__ import annotations

import time

import click
from flask import Flask
from flask.cli import AppGroup

from app import grants, keystore, settings
from app.models import AppClient

keys = AppGroup("keys", help="The access tokens' signing keys.")


def init_app(app: Flask) -> None:
    app.cli.add_command(keys)
    app.cli.add_command(clients)


def _ring() -> keystore.StoredRing:
    source = settings.current().keys.signing
    if not isinstance(source, keystore.StoredRing):
        raise click.ClickException("this app's keys are not stored in its database")
    return source


def _moment(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


@keys.command("rotate")
def rotate() -> None:
    """Add a key that starts signing after GATEHOUSE_KEY_PUBLISH_AHEAD seconds, delete retired
    keys, and re-encrypt every private key under the current SECRET_KEY."""
    config = settings.current()
    done = keystore.rotate(_ring(), now=config.clock(), publish_ahead=config.key_publish_ahead)
    click.echo(f"Retired {done.retired} keys; re-encrypted {done.reencrypted}.")
    click.echo(f"Added {done.kid}: published now, signing from {_moment(done.signs_from)}.")


@keys.command("list")
def list_keys() -> None:
    """Each key's id, state (next, signing, verifying, retired) and times."""
    at = settings.current().clock()
    ring = _ring().ring(at, fresh=True)
    for key in ring.keys:
        retires = ring.retires_at(key)
        opened = "" if key.private is not None else " (no configured secret opens it)"
        until = f", published until {_moment(retires)}" if retires is not None else ""
        click.echo(f"{key.kid}  {ring.state(key, at):<9}  signs from "
                   f"{_moment(key.signs_from)}{until}{opened}")


clients = AppGroup("clients", help="The apps that sign people in through Gatehouse.")


@clients.command("add")
@click.argument("name")
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True,
              help="http://127.0.0.1/PATH (any port), com.example.app:/cb, or https://...")
@click.option("--dpop", type=click.Choice(["required", "optional"]), default=None,
              help="Bind the app's tokens to its key (RFC 9449).")
def add_client(name: str, redirect_uris: tuple[str, ...], dpop: str | None) -> None:
    """Register an app; its client_id is the last line printed."""
    try:
        client_id = grants.register(name, list(redirect_uris), dpop=dpop or "",
                                    now=settings.current().clock())
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Registered {name}. Its client_id:")
    click.echo(client_id)


@clients.command("list")
def list_clients() -> None:
    """Each app: client_id, name, DPoP, redirect URIs."""
    for client in AppClient.select().order_by(AppClient.created_at):
        click.echo(f"{client.client_id}  {client.name}  dpop={client.dpop or 'no'}  "
                   f"{' '.join(grants.uris_of(client))}")


@clients.command("remove")
@click.argument("client_id")
def remove_client(client_id: str) -> None:
    """Remove an app and end every session it has."""
    if grants.find(client_id) is None:
        raise click.ClickException(f"No app has the client_id {client_id!r}.")
    ended = grants.remove(client_id, now=settings.current().clock())
    click.echo(f"Removed {client_id}; {ended} sessions ended.")
