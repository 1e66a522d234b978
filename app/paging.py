"""Pages of a list: no request reads more rows as a person's history grows."""

from __future__ import annotations

from dataclasses import dataclass

from peewee import Select

from app.config import MAX_PAGE, PAGE_SIZE


@dataclass(frozen=True)
class Page:
    """One page of a list: at most ``PAGE_SIZE`` rows, and whether another follows."""

    items: list
    number: int
    has_next: bool


def paged(query: Select, number: int) -> Page:
    """Page ``number`` (from 1) of ``query``; work bounded by MAX_PAGE * PAGE_SIZE rows."""
    number = min(max(1, number), MAX_PAGE)
    rows = list(query.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    return Page(rows[:PAGE_SIZE], number, len(rows) > PAGE_SIZE and number < MAX_PAGE)
