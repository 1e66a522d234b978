"""What every template may use: times in people's words, addresses with their places, the
words for end reasons and events."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from markupsafe import Markup, escape

from app import places, settings, words
from app.models import LoginSession
from app.sessions import rules


def init_app(app: Flask) -> None:
    app.add_template_filter(words.when, "when")
    app.add_template_filter(words.duration, "duration")
    app.add_template_filter(moment)
    app.add_template_filter(ago)
    app.add_template_global(places.place)
    app.add_template_global(where)
    app.add_template_global(words.end_reason)
    app.add_template_global(expires)
    app.jinja_env.globals["event_names"] = words.EVENT_NAMES
    app.add_template_global(insecure_origin)
    app.add_template_global(insecure_origin_words)


def insecure_origin() -> bool:
    """Development opened over plain http at an address that is not this computer (a phone on
    the LAN at http://192.168.1.5:5000, say): browsers refuse ``Secure`` (and so ``__Host-``)
    cookies there, so no form can work. Every page says what to do instead."""
    if current_app.config.get("GATEHOUSE_ENV") != "development" or request.scheme != "http":
        return False
    return not places.is_loopback(urlsplit(f"//{request.host}").hostname or "")


def insecure_origin_words() -> str:
    """What to do instead, with this site's address on this computer."""
    port = urlsplit(f"//{request.host}").port
    return words.INSECURE_ORIGIN.format(local=f"http://localhost{f':{port}' if port else ''}")

def ago(timestamp: float) -> str:
    return words.ago(timestamp, settings.now())


def moment(timestamp: float | None) -> Markup:
    """A ``<time>`` element: relative text, the exact UTC time in its ``datetime`` and title.
    static/moments.js shows that time in the reader's own time zone on hover and focus."""
    if timestamp is None:
        return Markup("")
    # Every part is made here from a number: nothing to escape (and this runs ~100 times a page).
    return Markup(f'<time datetime="{words.iso(timestamp)}" title="{words.when(timestamp)}" '
                  f"data-moment>{ago(timestamp)}</time>")


def where(ip: str) -> Markup:
    """An address with its approximate place: "8.8.8.8, United States", "10.0.0.2, this
    network", or the address alone when no place is known."""
    if not ip:
        return Markup("an unknown address")
    found = places.place(ip)
    if not found:
        return escape(ip)
    return Markup('{}<span class="place">, {}</span>').format(ip, found)


def expires(session: LoginSession) -> float:
    """When ``session`` ends unless it is used."""
    return rules.expires_at(session.last_active_at, session.absolute_expires_at,
                            settings.current().policy)
