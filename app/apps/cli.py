"""Operator commands: ``keys rotate`` and ``keys list``."""

from __future__ import annotations

import time

import click
from flask import Flask
from flask.cli import AppGroup

from app import keystore, settings

keys = AppGroup("keys", help="The access tokens' signing keys.")


def init_app(app: Flask) -> None:
    app.cli.add_command(keys)


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
