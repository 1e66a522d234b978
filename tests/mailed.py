"""What the mail-flow tests share: following a mailed link as a person would (open its page,
press its button), and an account confirmed through its mail."""

from __future__ import annotations

from urllib.parse import urlsplit

from support import PASSWORD, PUBLIC_URL, browser, login, page, register, submit


def path(url: str) -> str:
    assert url.startswith(PUBLIC_URL + "/"), url
    return urlsplit(url).path


def token(url: str) -> str:
    """A mailed link's token: its fragment, which no request line carries."""
    return urlsplit(url).fragment


def open_link(client, url: str):
    """Open a mailed link as its page's script does: the token, posted (this only shows the
    link's own page)."""
    return submit(client, path(url), {"token": token(url)})


def press(client, url: str, **fields):
    """Open a mailed link's page, then press its button (the POST with ``act`` does the
    work)."""
    return submit(client, path(url), {"token": token(url), "act": "1", **fields})


def press_as_shown(client, url: str, **fields):
    """Open a mailed link's page and send its form as a browser would: every hidden field
    and every box ticked as the page ticked it (``fields`` added). A page without a form (a
    link that no longer works) is returned as it is."""
    opened = open_link(client, url)
    form = page(opened).main.find("form", method="post")
    if form is None:
        return opened  # a used, expired or altered link: its page has nothing to press
    sent: dict[str, list[str]] = {}
    for field in form.find_all("input"):
        if field.get("type") == "checkbox" and not field.has_attr("checked"):
            continue
        sent.setdefault(field["name"], []).append(field.get("value", ""))
    for name, value in fields.items():
        sent[name] = [value]
    return client.post(form.get("action") or path(url), data=sent)


def confirm(client, url: str, password: str = PASSWORD):
    """A verification link's page asks for the account's password."""
    return press(client, url, password=password)


def verified(client, smtp, email="ada@example.com"):
    """Register ``email`` and confirm it through the mailed link, which signs the client in;
    it is signed out again here."""
    register(client, email)
    mail = smtp.mailbox.wait_for(email)[-1]
    assert mail.subject == "Confirm your email address"
    assert confirm(client, mail.link("/email/verify#")).status_code == 302
    submit(client, "/logout", {}, form_page="/account")
    return client


def signed_in(app, smtp, email="ada@example.com"):
    """A browser whose account is confirmed, signed in."""
    client = verified(browser(app), smtp, email)
    assert login(client, email).status_code == 302
    return client
