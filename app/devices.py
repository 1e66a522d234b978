"""A readable name for a User-Agent string ("Firefox 128 on Ubuntu"). The text stays untrusted:
templates escape it like any other value."""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse


@lru_cache(maxsize=1024)
def describe(user_agent: str) -> str:
    if not user_agent:
        return "Unknown device"
    result = parse(user_agent[:512])
    browser = result.user_agent
    system = result.os
    name = f"{browser.family} {browser.major}" if browser and browser.major else (
        browser.family if browser else "Unknown browser")
    return f"{name} on {system.family}" if system else name
