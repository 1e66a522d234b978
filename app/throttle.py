"""Throttling with its state in the database, so it holds across workers and instances.

A fixed window per key: once ``limit`` are counted within ``window`` seconds the key is refused
until the window ends. Keys name what is counted: ``account:<email>``, ``ip:<address>``,
``register-ip:<address>``...

Three ways to count:

- ``take`` counts a request *before* the work it guards (an argon2 hash, a mail), in one
  transaction for all its keys, so that no more than ``limit`` ever get through, however many
  arrive at once. A refused request is not counted.
- ``attempt`` is for password checks, where only failures may count (people behind one address,
  or a test suite sharing one user, sign in together): the attempt is admitted *in flight*
  before its check, while the failures plus the attempts in flight are below the limit, and
  then settled, as a failure (counted) or not (forgotten). Admission and settling are each one
  transaction, so however many wrong passwords arrive at once, no more than the limit are
  checked. An attempt that finds the room taken only by attempts in flight waits for them
  (``IN_FLIGHT_WAIT`` at most): if they succeed, it goes ahead.
- ``counting`` counts a failure after the fact, for work that costs no more than the counting
  (looking up a session value).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from peewee import Case, Insert

from app.config import IN_FLIGHT_STALE, IN_FLIGHT_WAIT
from app.db import write_transaction
from app.limits import Limit
from app.models import Throttle


class Throttled(Exception):
    """Too many recent failures (or requests) for this account or address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class _Over(Exception):
    """Raised inside a counting transaction to roll it back: nothing of it is counted."""

    def __init__(self, waits: list[float], busy: bool = False) -> None:
        super().__init__(waits)
        self.waits, self.busy = waits, busy


def _retry_after(waits: list[float]) -> int:
    return max(1, math.ceil(max(waits)))


def take(limits: list[Limit], now: float) -> None:
    """Count one request against every key; raise Throttled, counting nothing, if that is over
    any key's limit.

    Each key is one upsert that returns the count it wrote, all in one transaction: requests
    from every worker and instance queue on the key's row, and each sees its own number, so
    exactly ``limit`` of them pass per window.
    """
    try:
        with write_transaction():
            waits = []
            for limit in limits:
                count, window_start = _upsert(limit, now).returning(
                    Throttle.failures, Throttle.window_start).tuples().execute()[0]
                if count > limit.limit:
                    waits.append(window_start + limit.window - now)
            if waits:
                raise _Over(waits)
    except _Over as over:
        raise Throttled(_retry_after(over.waits)) from None


@dataclass
class Attempt:
    """A password check admitted against ``limits``; the caller says how it went."""

    limits: list[Limit]
    now: float
    failed: bool = True  # until the caller says otherwise: an error counts as a failure
    cleared: list[str] = field(default_factory=list)  # keys a success sets back to zero
    locked: list[Limit] = field(default_factory=list)  # keys this failure used up, once

    def succeeded(self, clear: list[str]) -> None:
        self.failed, self.cleared = False, clear


@contextmanager
def attempt(limits: list[Limit], now: float) -> Iterator[Attempt]:
    """Admit one password check against ``limits`` (raise Throttled when the failures already
    counted leave no room, or the attempts in flight do not resolve in time); on leaving the
    block, settle it: a failure counts against every key, a success against none and sets the
    ``cleared`` keys back to zero. ``Attempt.locked`` then names the keys this very failure
    used up (each lock is seen by exactly one attempt)."""
    _admit(limits, now)
    outcome = Attempt(limits, now)
    try:
        yield outcome
    finally:
        outcome.locked = _settle(outcome)


def _admit(limits: list[Limit], now: float) -> None:
    deadline = time.monotonic() + IN_FLIGHT_WAIT
    pause = 0.01
    while True:
        try:
            if not _room(limits, now):  # a read first: waiting never queues on the write lock
                raise _Over([1], busy=True)
            with write_transaction():
                _take_in_flight(limits, now)
            return
        except _Over as over:
            if not over.busy or time.monotonic() >= deadline:
                raise Throttled(_retry_after(over.waits)) from None
        time.sleep(pause * random.uniform(0.5, 1.5))
        pause = min(pause * 2, 0.2)


def _room(limits: list[Limit], now: float) -> bool:
    """Whether an attempt may be admitted now; raise _Over (not busy) when the failures alone
    leave no room, so that nothing waits for a lock that only time lifts."""
    rows = {row.key: row for row in Throttle.select().where(
        Throttle.key.in_([limit.key for limit in limits]))}
    room, waits = True, []
    for limit in limits:
        row = rows.get(limit.key)
        if row is None:
            continue
        failures, in_flight = _current(row, limit, now)
        if failures >= limit.limit:
            waits.append(row.window_start + limit.window - now)
        elif failures + in_flight >= limit.limit:
            room = False
    if waits:
        raise _Over(waits)
    return room


def _current(row: Throttle, limit: Limit, now: float) -> tuple[int, int]:
    """The failures of the key's current window and its attempts in flight (those admitted
    longer ago than IN_FLIGHT_STALE belong to a worker that died mid-check)."""
    failures = 0 if row.window_start <= now - limit.window else row.failures
    in_flight = 0 if row.in_flight_at <= now - IN_FLIGHT_STALE else row.in_flight
    return failures, in_flight


def _take_in_flight(limits: list[Limit], now: float) -> None:
    """One more attempt in flight on every key, or none (raise _Over) if any is then over."""
    waits, busy = [], False
    for limit in limits:
        window_over = Throttle.window_start <= now - limit.window
        stale = Throttle.in_flight_at <= now - IN_FLIGHT_STALE
        failures, in_flight, window_start = (
            Throttle.insert(key=limit.key, window_start=now, failures=0, in_flight=1,
                            in_flight_at=now)
            .on_conflict(conflict_target=[Throttle.key], update={
                Throttle.failures: Case(None, [(window_over, 0)], Throttle.failures),
                Throttle.window_start: Case(None, [(window_over, now)], Throttle.window_start),
                Throttle.in_flight: Case(None, [(stale, 1)], Throttle.in_flight + 1),
                Throttle.in_flight_at: now,
            })
            .returning(Throttle.failures, Throttle.in_flight, Throttle.window_start)
            .tuples().execute()[0])
        if failures >= limit.limit:
            waits.append(window_start + limit.window - now)
        elif failures + in_flight > limit.limit:
            busy = True
    if waits or busy:
        raise _Over(waits or [1], busy=not waits)


def _settle(outcome: Attempt) -> list[Limit]:
    now, locked = outcome.now, []
    landed = Case(None, [(Throttle.in_flight > 0, Throttle.in_flight - 1)], 0)
    with write_transaction():
        for limit in outcome.limits:
            update: dict = {Throttle.in_flight: landed}
            if outcome.failed:
                window_over = Throttle.window_start <= now - limit.window
                update[Throttle.failures] = Case(None, [(window_over, 1)],
                                                 Throttle.failures + 1)
                update[Throttle.window_start] = Case(None, [(window_over, now)],
                                                     Throttle.window_start)
            elif limit.key in outcome.cleared:
                update[Throttle.failures] = 0
            rows = list(Throttle.update(update).where(Throttle.key == limit.key)
                        .returning(Throttle.failures).tuples().execute())
            if outcome.failed and rows and rows[0][0] == limit.limit:
                locked.append(limit)
    return locked


def clear(keys: list[str]) -> None:
    """Set the failures of ``keys`` back to zero (a password reset, an unlock link); attempts
    in flight stay counted until they land. Key by key, in the order attempts lock them, so
    that this never deadlocks with one."""
    for key in keys:
        Throttle.update(failures=0).where(Throttle.key == key).execute()


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
        with write_transaction():
            for limit in limits:
                _upsert(limit, now).execute()
        raise


def check(limits: list[Limit], now: float) -> None:
    """Raise Throttled if any of the keys has used up its failures in the current window."""
    rows = {row.key: row for row in Throttle.select().where(
        Throttle.key.in_([limit.key for limit in limits]))}
    waits = [row.window_start + limit.window - now for limit in limits
             if (row := rows.get(limit.key)) and row.window_start + limit.window > now
             and row.failures >= limit.limit]
    if waits:
        raise Throttled(_retry_after(waits))


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


def prune(now: float, max_window: int) -> int:
    removed: int = Throttle.delete().where(Throttle.window_start < now - max_window).execute()
    return removed
