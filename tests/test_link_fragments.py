"""Mailed links carry their token in the URL's fragment, which no request line holds: what an
access log, a proxy or a Referer header records never contains one."""

from __future__ import annotations

from urllib.parse import urlsplit

from mailed import open_link, press, signed_in
from support import PASSWORD, UA_PHONE, browser, login, page, submit

NEW_PASSWORD = "a brand new and rather long passphrase"


def secret_of(url: str) -> str:
    """The link's token, wherever the link puts it."""
    parts = urlsplit(url)
    return parts.fragment or parts.path.rstrip("/").rsplit("/", 1)[-1]


def test_no_request_line_ever_holds_a_link_token(mail_app, smtp):
    """Every kind of link, used as a person would: the request lines (what an access log
    writes: path and query) never hold its token, and each page still works."""
    seen: list[str] = []
    serve = mail_app.wsgi_app

    def access_log(environ, start_response):
        seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}?"
                    f"{environ.get('QUERY_STRING', '')}")
        return serve(environ, start_response)

    mail_app.wsgi_app = access_log
    ada = signed_in(mail_app, smtp)  # a verification link
    verify = smtp.mailbox.about("ada@example.com", "Confirm your email").links()[0]
    assert submit(ada, "/account/email", {"email": "ada@new.example",
                                          "current_password": PASSWORD}).status_code == 302
    change = smtp.mailbox.about("ada@new.example", "Confirm your new").link("/account/email")
    assert press(ada, change).status_code == 302
    submit(browser(mail_app), "/password/forgot", {"email": "ada@new.example"})
    reset = smtp.mailbox.about("ada@new.example", "Reset your password").link("/password/reset")
    assert press(browser(mail_app), reset, new_password=NEW_PASSWORD).status_code == 302
    login(browser(mail_app, UA_PHONE), "ada@new.example", NEW_PASSWORD)
    not_me = smtp.mailbox.about("ada@new.example", "New sign-in").link("/not-me")
    assert press(browser(mail_app), not_me).status_code == 200
    secrets = [secret_of(url) for url in (verify, not_me, change, reset)]
    assert all(len(secret) >= 43 for secret in secrets), secrets
    assert not [line for line in seen for secret in secrets if secret in line]
    assert [urlsplit(url).path for url in (verify, not_me, change, reset)] == [
        "/email/verify", "/not-me", "/account/email/confirm", "/password/reset"]


def test_the_page_a_link_opens_reads_its_token_with_a_script_or_a_paste(mail_app, smtp):
    """The link's address serves a form for the token (filled by ``link-token.js`` from the
    fragment, or pasted); only posting it opens the link's page, and a token in the path is
    no route at all."""
    submit(browser(mail_app), "/register", {"email": "ada@example.com", "password": PASSWORD})
    link = smtp.mailbox.about("ada@example.com", "Confirm your email").link("/email/verify")
    reader = browser(mail_app)
    shell = page(reader.get(urlsplit(link).path))
    assert shell.find("form", attrs={"data-link-token": True}).find("input", attrs={
        "name": "token"})
    assert shell.find("script", src="/static/link-token.js")
    script = reader.get("/static/link-token.js")
    assert script.status_code == 200 and b"location.hash" in script.data
    script.close()
    opened = open_link(reader, link)
    assert "Confirm my address" in opened.get_data(as_text=True)
    assert reader.get(f"/email/verify/{secret_of(link)}").status_code == 404
