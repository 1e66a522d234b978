"""The pages behind mailed links. A link carries its token in the URL's fragment
(``/password/reset#<token>``), which browsers never send: no access log, proxy or Referer
ever holds it. The page a link opens is one form with the token field; ``static/link-token.js``
fills it from the fragment, takes the fragment out of the address bar and sends it, and a
person without script pastes the code. That POST only opens the link's own page (mail
scanners that run script get no further); the page's form, which carries the token again with
``act``, does the work.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import render_template, request

from app import links, settings
from app.forms import NewPasswordForm
from app.models import LinkToken, User

LinkView = Callable[[str, LinkToken, bool], Any]


def link_page(purpose: str) -> Callable[[LinkView], Callable[[], Any]]:
    """A view of the link ``purpose``: called with the token, its row (a used, expired or
    unknown token raises ``LinkError``, which explains itself) and whether the person pressed
    the page's button (``act``) rather than just opened it."""

    def decorate(view: LinkView) -> Callable[[], Any]:
        @functools.wraps(view)
        def opened() -> Any:
            if request.method != "POST":
                return render_template("auth/link_open.html")
            token = request.form.get("token", "").strip()
            row = links.check(token, purpose, now=settings.now())
            return view(token, row, request.form.get("act") == "1")

        return opened

    return decorate


def new_password_page(user: User, reset_token: str, done: tuple[str, str]) -> str:
    """What a link that stopped the password answers: the form for a new one, under a note of
    what was just done (``done``: its test hook and its words). The reset token was issued
    with that change: the mailed link has just proven the mailbox."""
    return render_template("auth/reset.html", form=NewPasswordForm(user.email, formdata=None),
                           email=user.email, token=reset_token, done=done)


def fresh(acting: bool) -> dict[str, Any]:
    """A form's arguments on a link's page: read from the request when its button was
    pressed; when the link was only opened, empty (no "enter your password" before anyone
    could)."""
    return {} if acting else {"formdata": None}
