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


def page_number(raw: str | None) -> int:
    """The page a query string asks for: absent is 1; anything but a whole number from 1
    ("0", "-1", "abc", "1.5", "") is ValueError, never quietly page 1."""
    if raw is None:
        return 1
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:  # int() refuses 4,300+ digits
        raise ValueError(f"not a page number: {raw[:20]!r}")
    return int(raw)


def paged(query: Select, number: int) -> Page:
    """Page ``number`` (from 1) of ``query``; work bounded by MAX_PAGE * PAGE_SIZE rows. A page
    past the end is empty (past MAX_PAGE, without a query), never another page."""
    number = max(1, number)
    if number > MAX_PAGE:
        return Page([], number, False)
    rows = list(query.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    return Page(rows[:PAGE_SIZE], number, len(rows) > PAGE_SIZE and number < MAX_PAGE)
