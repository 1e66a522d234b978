"""Prometheus metrics: what operators alert on, correct across gunicorn's worker processes.

Every series has labels of a few known values only (route templates, methods, outcomes,
reasons, kinds), never a path, an address or an id. Under gunicorn, ``gunicorn.conf.py`` sets
``PROMETHEUS_MULTIPROC_DIR`` (a directory it empties at start) before the app is imported, so
each worker writes its values to files there and ``/metrics`` sums every worker's; a worker
that exits is marked dead there. Without it (``flask run``, tests) the values live in the one
process.

Counted at one place each: security events in ``audit`` (sign-ins, rotations, ends, throttles),
mail attempts in ``mail.outbox``, requests in ``logs``' WSGI wrapper.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from app.sessions.rules import REUSE_DETECTED

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

# Its ``_count`` is the number of requests: by method, route template and status class
# (2xx, 3xx, 4xx, 5xx).
REQUEST_SECONDS = Histogram(
    "gatehouse_request_duration_seconds", "Time from a request's arrival to its response's "
    "start, by method, route template and status class", ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
SIGN_INS = Counter("gatehouse_sign_ins_total", "Sign-in attempts, by method (how the person "
                   "proved who they are) and outcome (success, failure)", ["method", "outcome"])
ROTATIONS = Counter("gatehouse_rotations_total", "Session values presented for rotation, by "
                    "outcome: rotated, grace (a parallel request's value, forgiven), "
                    "lost_response (a response that never arrived, forgiven), reuse (the "
                    "session ended)", ["outcome"])
SESSIONS_ENDED = Counter("gatehouse_sessions_ended_total", "Sessions ended, by reason",
                         ["reason"])
THROTTLED = Counter("gatehouse_throttled_total", "Requests refused with 429 by a throttle")
SECURITY_EVENTS = Counter("gatehouse_security_events_total", "Security events, by kind",
                          ["kind"])
MAIL = Counter("gatehouse_mail_total", "Mail delivery attempts, by outcome: sent, failed "
               "(to be retried), given_up", ["outcome"])

# Any other method (gunicorn accepts any 3 to 20 capitals) is counted as "other": a made-up
# method must not make a new series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# A label set's child is looked up once per process, not on every request.
_request_children: dict[tuple[str, str, str], Histogram] = {}


def observe_request(method: str, route: str, status: str, seconds: float) -> None:
    """One request answered: ``status`` is its status line ("200 OK"), counted by class."""
    method = method if method in METHODS else "other"
    key = (method, route, status[0])
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = REQUEST_SECONDS.labels(method, route, f"{status[0]}xx")
    child.observe(seconds)


_children: dict[tuple[object, ...], Counter] = {}


def count(series: Counter, *labels: str) -> None:
    """One more in ``series`` with ``labels``; each label set's child is looked up once."""
    key = (series, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = series.labels(*labels) if labels else series
    child.inc()


def rotation(outcome: str) -> None:
    count(ROTATIONS, outcome)


def session_ended(reason: str) -> None:
    count(SESSIONS_ENDED, reason)
    if reason == REUSE_DETECTED:
        count(ROTATIONS, "reuse")


def mail(outcome: str) -> None:
    count(MAIL, outcome)


def exposition() -> tuple[bytes, str]:
    """The text format of every series, summed over every worker under gunicorn."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """For gunicorn's ``child_exit``: the exited worker's live-only values are dropped."""
    if os.environ.get(MULTIPROCESS_DIR):
        _multiprocess.mark_process_dead(pid)
