"""Failure throttling with its state in the database, so it holds across workers and instances.

A fixed window per key: after ``limit`` failures within ``window`` seconds the key is refused
until the window ends. Keys name what is counted: ``account:<email>``, ``ip:<address>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from peewee import Case

from app.db import write_transaction
from app.models import Throttle


class Throttled(Exception):
    """Too many recent failures for this account or address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    key: str
    limit: int
    window: int


@dataclass(frozen=True)
class Throttles:
    """The configured limits: password failures per account and per client address, and
    unknown session values per client address, each within one window."""

    per_account: int
    per_ip: int
    window: int
    unknown_sessions_per_ip: int

    def for_sign_in(self, email: str, ip: str) -> list[Limit]:
        """The account's limit first: a success resets it, and only it."""
        return [Limit(f"account:{email}", self.per_account, self.window),
                Limit(f"ip:{ip}", self.per_ip, self.window)]

    def for_unknown_sessions(self, ip: str) -> list[Limit]:
        return [Limit(f"session-ip:{ip}", self.unknown_sessions_per_ip, self.window)]


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
            window_over = Throttle.window_start <= now - limit.window
            (Throttle.insert(key=limit.key, window_start=now, failures=1)
             .on_conflict(conflict_target=[Throttle.key], update={
                 Throttle.failures: Case(None, [(window_over, 1)], Throttle.failures + 1),
                 Throttle.window_start: Case(None, [(window_over, now)], Throttle.window_start),
             }).execute())


def reset(key: str) -> None:
    Throttle.delete().where(Throttle.key == key).execute()


def prune(now: float, max_window: int) -> int:
    removed: int = Throttle.delete().where(Throttle.window_start < now - max_window).execute()
    return removed
