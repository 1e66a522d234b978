"""Throttling with its state in the database, so it holds across workers and instances.

A fixed window per key: after ``limit`` counted attempts within ``window`` seconds the key is
refused until the window ends. Keys name what is counted: ``account:<email>``,
``ip:<address>``, ``register-ip:<address>``...

Two ways to count. ``take`` counts an attempt *before* the costly work it guards (a password
check, an argon2 hash), in one statement per key, so that no more than ``limit`` attempts
ever get through, however many arrive at once. ``check`` and ``fail`` count a failure after
the fact, for work that costs no more than the counting (looking up a session value).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from peewee import Case, Insert

from app.db import write_transaction
from app.limits import Limit
from app.models import Throttle


class Throttled(Exception):
    """Too many recent failures for this account or address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@contextmanager
def counting(limits: list[Limit], now: float, failure: type[Exception]) -> Iterator[None]:
    """Count every ``failure`` the block raises against ``limits``; once they are used up,
    raise Throttled instead.

    For guessed session values: only an unknown value counts, so a known one is never refused
    and people behind the same address as a guesser stay signed in.
    """
    try:
        yield
    except failure:
        check(limits, now)
        fail(limits, now)
        raise


def check(limits: list[Limit], now: float) -> None:
    """Raise Throttled if any of the keys has used up its failures in the current window."""
    rows = {row.key: row for row in Throttle.select().where(
        Throttle.key.in_([limit.key for limit in limits]))}
    waits = [row.window_start + limit.window - now for limit in limits
             if (row := rows.get(limit.key)) and row.window_start + limit.window > now
             and row.failures >= limit.limit]
    if waits:
        raise Throttled(max(1, math.ceil(max(waits))))


def fail(limits: list[Limit], now: float) -> None:
    """Count one failure against every key, starting a new window where the old one ended.

    One upsert per key, so concurrent failures from several workers are all counted.
    """
    with write_transaction():
        for limit in limits:
            _upsert(limit, now).execute()


def take(limits: list[Limit], now: float) -> None:
    """Count one attempt against every key; raise Throttled if it is over any key's limit.

    Each key is one upsert that returns the count it wrote, all in one transaction: attempts
    from every worker and instance queue on the key's row, and each sees its own number, so
    exactly ``limit`` of them pass per window. A refused attempt counts too (the key simply
    stays over its limit until the window ends).
    """
    waits = []
    with write_transaction():
        for limit in limits:
            count, window_start = _upsert(limit, now).returning(
                Throttle.failures, Throttle.window_start).tuples().execute()[0]
            if count > limit.limit:
                waits.append(window_start + limit.window - now)
    if waits:
        raise Throttled(max(1, math.ceil(max(waits))))


def give_back(key: str) -> None:
    """Return an attempt ``take`` counted, once the attempt turned out well: a person signing
    in from an address does not use up that address's allowance for failures."""
    Throttle.update(failures=Throttle.failures - 1).where(
        Throttle.key == key, Throttle.failures > 0).execute()


def _upsert(limit: Limit, now: float) -> Insert:
    window_over = Throttle.window_start <= now - limit.window
    return (Throttle.insert(key=limit.key, window_start=now, failures=1)
            .on_conflict(conflict_target=[Throttle.key], update={
                Throttle.failures: Case(None, [(window_over, 1)], Throttle.failures + 1),
                Throttle.window_start: Case(None, [(window_over, now)], Throttle.window_start),
            }))


def window_end(limit: Limit) -> float:
    """When the current window of ``limit`` ends (a key that has counted in it)."""
    return float(Throttle.get_by_id(limit.key).window_start + limit.window)


def reset(key: str) -> None:
    Throttle.delete().where(Throttle.key == key).execute()


def prune(now: float, max_window: int) -> int:
    removed: int = Throttle.delete().where(Throttle.window_start < now - max_window).execute()
    return removed
