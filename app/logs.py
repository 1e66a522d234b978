"""Logging: configured by the app, one access line per request, a request id on every line.

``configure`` gives the ``gatehouse`` loggers one handler on stderr (whatever ``sys.stderr``
is when a line is written), a UTC timestamp with milliseconds, the level of
``GATEHOUSE_LOG_LEVEL`` and the format of ``GATEHOUSE_LOG_FORMAT``: ``text`` (one line:
time, level, logger, message, request id) or ``json`` (one JSON object per line, so a CR or LF
in any value stays inside one escaped string). Records still propagate, so a handler an
embedding program puts on the root logger sees them too.

``with_access_log`` wraps the WSGI app: each request gets a request id (its ``X-Request-ID``
when that is a sane token, else one made here, returned in the response either way), and, once
its response starts, one line on ``gatehouse.access``: method, route template (never the
path: a mailed link's token is part of its path), status, duration, request id. The same
timing feeds ``metrics``. It is kept cheap: no logger lookup and no random bytes per request
(an id is this process's random prefix and a counter), and the line is formatted only by a
handler that writes it.

Security events (``audit``) and mail attempts (``mail.outbox``) log on their own loggers,
``gatehouse.security`` and ``gatehouse.mail``; every line written while a request is served
carries that request's id.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from flask import Flask

from app import metrics

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ROOT = "gatehouse"
access_log = logging.getLogger("gatehouse.access")
REQUEST_ID_HEADER = "X-Request-ID"
# What an incoming X-Request-ID may be to be kept: a token of a proxy or a client's own
# (a UUID, a trace id), nothing that could break a log line or a header.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}").fullmatch
_request_id: ContextVar[str] = ContextVar("gatehouse_request_id", default="-")
UNMATCHED = "<unmatched>"  # the route label of a request no route matched (a 404)


def current_request_id() -> str:
    """The id of the request being served on this thread, "-" outside one."""
    return _request_id.get()


class _Ids:
    """Request ids: a random prefix per process (new in each forked worker) and a counter."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        prefix = os.urandom(6).hex()
        self.next = map(f"{prefix}-{{:x}}".format, itertools.count(1)).__next__


_ids = _Ids()


class _Timestamps:
    """``2026-12-07T04:46:29.123Z``; the part down to the second is formatted once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self.second:
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self.second = second
        return "%s.%03dZ" % (self.prefix, (created - second) * 1000)  # noqa: UP031


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message [request id]``; a traceback follows on its own lines."""

    def __init__(self) -> None:
        super().__init__()
        self.second = -1
        self.prefix = ""

    def format(self, record: logging.LogRecord) -> str:
        created = record.created
        second = int(created)
        if second != self.second:  # the timestamp down to the second, once a second
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self.second = second
        line = "%s.%03dZ %s %s %s [%s]" % (self.prefix, (created - second) * 1000,  # noqa: UP031
                                            record.levelname, record.name,
                                            record.getMessage(), _request_id.get())
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


ACCESS_FIELDS = ("method", "route", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id; an access line's
    fields by name, a security event's fields (``audit.Event``) merged in."""

    def __init__(self) -> None:
        super().__init__()
        self.stamp = _Timestamps()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": self.stamp(record.created), "level": record.levelname,
                                 "logger": record.name, "request_id": _request_id.get()}
        args = record.args
        if record.name == access_log.name and isinstance(args, tuple):
            entry.update(zip(ACCESS_FIELDS, args, strict=True))
            entry["status"] = int(entry["status"])
            entry["duration_ms"] = round(entry["duration_ms"], 1)
            entry["message"] = record.getMessage()
        elif isinstance(args, tuple) and len(args) == 1 and hasattr(args[0], "fields"):
            event: Any = args[0]  # a security event (``audit.Event``): its fields, its kind
            entry.update(event.fields)
            entry["message"] = event.kind
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a line is written (a test harness may swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        # StreamHandler's, without a second trip through the lock ``handle`` already holds.
        try:
            stream = sys.stderr
            stream.write(f"{self.format(record)}\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own policy: report, never raise
            self.handleError(record)


class _AccessRecords:
    """LogRecords for access lines, made from a template: what ``Logger.makeRecord`` gives,
    minus the source file, the function and the thread's name (as with ``logging.logThreads``
    off), for a fifth of its cost. The template is made again in each forked worker."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.template = dict(logging.LogRecord(access_log.name, logging.INFO, "", 0,
                                               ACCESS_FORMAT, (), None).__dict__,
                             threadName=None)

    def __call__(self, args: tuple[object, ...]) -> logging.LogRecord:
        record = _new_record(logging.LogRecord)
        now = _time()
        record.__dict__ = {**self.template, "args": args, "created": now,
                           "msecs": (now - int(now)) * 1000,
                           "relativeCreated": (now - _started) * 1000, "thread": _ident()}
        return record


ACCESS_FORMAT = "%s %s %s %.1fms"
_new_record = object.__new__
_time, _ident = time.time, threading.get_ident
_started = time.time()  # only for relativeCreated, which nothing here reads


def configure(level: str, form: str) -> None:
    """The ``gatehouse`` loggers' one handler, level and format (idempotent: the app's last
    call wins, as there is one stderr per process)."""
    root = logging.getLogger(ROOT)
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if form == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def init_app(app: Flask) -> None:
    configure(app.config["GATEHOUSE_LOG_LEVEL"], app.config["GATEHOUSE_LOG_FORMAT"])
    app.wsgi_app = with_access_log(app.wsgi_app)  # type: ignore[method-assign,assignment]


def with_access_log(wsgi_app: WSGIApplication) -> WSGIApplication:
    """Wrap the WSGI app: a request id for each request, its access line and its duration."""
    clock = time.perf_counter
    ids = _ids
    handle, enabled, make_record = access_log.handle, access_log.isEnabledFor, _AccessRecords()
    observe = metrics.observe_request
    info, header = logging.INFO, REQUEST_ID_HEADER

    def finished(environ: WSGIEnvironment, status: str, elapsed: float) -> None:
        # werkzeug keeps the request in its environ: no context-local proxy to go through.
        found = environ.get("werkzeug.request")
        rule = found.url_rule if found is not None else None
        route = rule.rule if rule is not None else UNMATCHED
        method = environ["REQUEST_METHOD"]
        observe(method, route, status, elapsed)
        if enabled(info):
            handle(make_record((method, route, status[:3], elapsed * 1000)))

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = clock()
        given = environ.get("HTTP_X_REQUEST_ID")
        request_id = given if given and _SANE_ID(given) else ids.next()
        reset = _request_id.set(request_id)
        answered = False

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal answered
            headers.append((header, request_id))
            if not answered:
                answered = True
                finished(environ, status, clock() - started)
            return start_response(status, headers, exc_info)

        try:
            return wsgi_app(environ, start)
        finally:
            _request_id.reset(reset)

    return app
