"""Mail: messages rendered from ``templates/mail/``, queued in the outbox with the change that
causes them, and sent after the response by a background thread of the worker.

``queue`` is what the rest of the app calls. Nothing here ever makes a request wait for a mail
server: the request only writes a row.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask, Response, current_app, g, has_request_context, render_template, request
from flask.cli import with_appcontext

from app import places, settings
from app.db import database
from app.mail import outbox
from app.mail.transport import FileTransport, SmtpTransport, Transport

log = logging.getLogger("gatehouse.mail")

IDLE_WAKE = 60  # seconds: the longest a sender sleeps while messages wait for a retry


@dataclass
class Mailer:
    transport: Transport | None  # None: production without a mail server, nothing is queued
    dispatcher: Dispatcher


def init_app(app: Flask) -> None:
    configured = settings.of(app).mail
    transport: Transport | None = None
    if configured.smtp is not None:
        transport = SmtpTransport(configured.smtp)
    elif configured.outbox_dir is not None:
        transport = FileTransport(configured.outbox_dir)
    app.extensions["gatehouse_mail"] = Mailer(transport=transport, dispatcher=Dispatcher(app))
    app.cli.add_command(send_mail)
    if transport is not None:
        app.before_request(_first_request)
        app.after_request(kick_after_request)


def _first_request() -> None:
    """A worker's first request wakes its sender: mail left behind by a worker that died
    between commit and send goes out without waiting for new mail."""
    dispatcher = mailer().dispatcher
    if dispatcher.pid != os.getpid():
        dispatcher.kick()


def mailer() -> Mailer:
    return current_app.extensions["gatehouse_mail"]


def link(path: str) -> str:
    """An absolute link for a mail: from GATEHOUSE_PUBLIC_URL, never the Host header (but see
    ``origin``)."""
    return origin() + path


def origin() -> str:
    """Where a mail's links point: GATEHOUSE_PUBLIC_URL; in development without one, the
    origin of the request that caused the mail when its host is this computer (whatever
    port the site was started on), else the quick start's. Never the Host header otherwise,
    and never in production."""
    configured = settings.current()
    if configured.links_from_request and has_request_context():
        host = urlsplit(f"//{request.host}").hostname or ""
        if places.is_loopback(host):
            return f"{request.scheme}://{request.host}"
    return configured.public_url


def queue(recipient: str, template: str, subject: str, *, now: float,
          **context: Any) -> int | None:
    """Render ``mail/<template>.txt`` and ``.html`` and queue them, in the caller's transaction;
    the outbox row's id (None: no mail is sent here).

    The worker's sender is woken once this request's response is done, after the commit.
    """
    return queue_at(None, recipient, template, subject, now=now, **context)


def queue_at(send_at: float | None, recipient: str, template: str, subject: str, *,
             now: float, **context: Any) -> int | None:
    """``queue``, to be sent at ``send_at`` rather than at once (a summary at an hour's end)."""
    if mailer().transport is None:
        return None
    text, html = render(template, subject, **context)
    row = outbox.put(recipient=recipient, subject=subject, text=text, html=html, now=now,
                     send_at=send_at)
    if has_request_context():
        g.mail_queued = True
    return int(row.id)


def requeue(message_id: int, template: str, subject: str, **context: Any) -> bool:
    """Render a queued message anew (a summary that grew); False once it is being sent."""
    text, html = render(template, subject, **context)
    return outbox.rewrite(message_id, subject=subject, text=text, html=html)


def render(template: str, subject: str, **context: Any) -> tuple[str, str]:
    """The plain-text and HTML parts (the HTML escaped by Jinja, the text left as written)."""
    context.update(subject=subject, public_url=origin())
    return (render_template(f"mail/{template}.txt", **context),
            render_template(f"mail/{template}.html", **context))


def send_pending(app: Flask) -> tuple[int, int]:
    """Send every due message now, in this thread; returns (sent, failed)."""
    transport, configured = app.extensions["gatehouse_mail"].transport, settings.of(app)
    if transport is None:
        return 0, 0
    return outbox.send_due(transport, sender=configured.mail.sender,
                           domain=configured.mail.domain, now=configured.clock)


class Dispatcher:
    """One sender thread per worker process, started when there is something to send.

    It sends what is due, then sleeps until the next retry is due (at most ``IDLE_WAKE``
    seconds) and exits once nothing is pending. A worker's first request wakes it too, so mail
    left by a worker that died is sent by the others.
    """

    def __init__(self, app: Flask) -> None:
        self.app, self.lock, self.wake = app, threading.Lock(), threading.Event()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.stopped = False

    def stop(self) -> None:
        """For tests and shutdown: the thread finishes what it is sending, then exits."""
        self.stopped = True
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=30)

    def kick(self) -> None:
        if self.stopped:
            return
        self.wake.set()
        with self.lock:
            # A thread does not survive fork: gunicorn --preload workers start their own.
            if self.thread is None or not self.thread.is_alive() or self.pid != os.getpid():
                self.pid = os.getpid()
                self.thread = threading.Thread(target=self._run, name="gatehouse-mail",
                                               daemon=True)
                self.thread.start()

    def _run(self) -> None:
        clock = settings.of(self.app).clock
        while not self.stopped:
            self.wake.clear()
            with self.app.app_context():
                try:
                    with database.connection_context():
                        send_pending(self.app)
                        wake_at = outbox.next_wake(clock())
                        pause = wake_at - clock() if wake_at is not None else None
                except Exception:  # the database is down: try again later, never die loudly
                    log.warning("mail sender could not reach the database", exc_info=True)
                    pause = IDLE_WAKE
            if pause is None and not self.wake.is_set():
                return
            self.wake.wait(timeout=min(max(pause or 0, 0.05), IDLE_WAKE))


def kick_after_request(response: Response) -> Response:
    """After the view's transaction committed: wake the sender if this request queued mail."""
    if g.get("mail_queued"):
        mailer().dispatcher.kick()
    return response


@click.command("send-mail")
@with_appcontext
def send_mail() -> None:
    """Send every message in the outbox that is due now (what the app does after each commit)."""
    sent, failed = send_pending(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo(f"Sent {sent} message{'s' if sent != 1 else ''}, {failed} failed "
               "(they are retried later).")
