"""Logs: configured by the app on stderr, an access line per request with its route template
and a request id (kept or made, and returned), every security event and mail attempt, JSON
on request, and never a secret."""

from __future__ import annotations

import json

import mailed
import pytest
from support import (
    PASSWORD,
    PUBLIC_URL,
    SECRET,
    Cookies,
    browser,
    cookie,
    csrf_token,
    login,
    register,
    submit,
)

from app import tokens
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.config import ConfigError
from app.models import LoginSession, OutboxMessage, RefreshToken, User

ADA = "ada@example.com"


def lines(capfd) -> list[str]:
    return capfd.readouterr().err.splitlines()


def test_one_access_line_per_request_with_its_route_template_and_request_id(app, capfd):
    client = browser(app)
    capfd.readouterr()
    reply = client.get("/sessions/s3cr3tpathpart", headers={"X-Request-ID": "trace-42.a:b"})
    assert reply.headers["X-Request-ID"] == "trace-42.a:b"  # a sane id is kept and returned
    (line,) = lines(capfd)
    assert " INFO gatehouse.access GET /sessions/<session_id> 302 " in line
    assert line.endswith("ms [trace-42.a:b]") and "s3cr3tpathpart" not in line
    assert line[:24].endswith("Z") and line[10] == "T"  # 2026-12-07T04:46:29.123Z


@pytest.mark.parametrize("given", ["x" * 200, "<script>", "a b", "-leading-dash"])
def test_an_unsafe_request_id_is_replaced_by_one_made_here(app, capfd, given):
    reply = browser(app).get("/healthz", headers={"X-Request-ID": given})
    made = reply.headers["X-Request-ID"]
    assert made != given and made in lines(capfd)[-1]
    assert browser(app).get("/healthz").headers["X-Request-ID"] != made  # one per request


def test_json_format_is_one_object_per_line_with_the_request_id_on_each(make_app, capfd):
    app = make_app(GATEHOUSE_LOG_FORMAT="json")
    client = browser(app)
    register(client)
    capfd.readouterr()
    login(client, password="a wrong password for sure")
    entries = [json.loads(line) for line in lines(capfd)]  # every line is one object
    event = next(e for e in entries if e.get("event") == "sign_in_failed")
    access = next(e for e in entries if e.get("route") == "/login" and e["method"] == "POST")
    assert access["status"] == 401 and isinstance(access["duration_ms"], float)
    assert event["request_id"] == access["request_id"] != "-"
    assert event["logger"] == "gatehouse.security" and event["level"] == "INFO"
    assert all(e["time"].endswith("Z") for e in entries)


def test_the_level_comes_from_the_setting(make_app, capfd):
    app = make_app(GATEHOUSE_LOG_LEVEL="warning")
    capfd.readouterr()
    register(browser(app))
    assert lines(capfd) == []  # INFO lines (access, events) are below the level


@pytest.mark.parametrize("name, value", [("GATEHOUSE_LOG_LEVEL", "loud"),
                                         ("GATEHOUSE_LOG_FORMAT", "xml"),
                                         ("GATEHOUSE_METRICS_TOKEN", "short")])
def test_a_bad_setting_refuses_to_start(make_app, name, value):
    with pytest.raises(ConfigError, match=name):
        make_app(**{name: value})


def test_every_mail_attempt_is_logged(mail_app, smtp, capfd):
    register(browser(mail_app))
    smtp.mailbox.wait_for(ADA)
    from polling import eventually
    eventually(lambda: any("gatehouse.mail mail " in line and " sent (" in line
                           for line in capfd.readouterr().err.splitlines()),
               within=10, what="the sent mail's log line")


def test_a_full_run_of_flows_logs_no_secret(make_app, smtp, clock, capfd):
    """Production with mail, JSON and DEBUG: every secret and token the test sees, and every
    hash of one the database holds, is looked for in everything the app wrote to stderr."""
    app = make_app(GATEHOUSE_EMAIL_VERIFICATION="required", GATEHOUSE_SMTP_URL=smtp.url,
                   GATEHOUSE_PUBLIC_URL=PUBLIC_URL, GATEHOUSE_LOG_LEVEL="DEBUG",
                   GATEHOUSE_LOG_FORMAT="json", GATEHOUSE_ACCESS_TOKEN_TTL=1,
                   GATEHOUSE_METRICS_TOKEN="metrics-token-for-the-tests-0123")
    new_password, wrong = "a brand new and rather long passphrase", "this is the wrong one"
    known = {PASSWORD, new_password, wrong, SECRET, "metrics-token-for-the-tests-0123"}
    client = browser(app)
    known.add(csrf_token(client.get("/register")))
    register(client)
    links = []

    def follow(subject: str, path_part: str, **fields) -> None:
        link = smtp.mailbox.about(ADA, subject).link(path_part)
        links.append(link)
        known.add(mailed.token(link))
        mailed.press(client, link, **fields)

    follow("Confirm your email address", "/email/verify#", password=PASSWORD)
    login(client, password=wrong)
    keys = tokens.Keys.derive(SECRET)
    for _ in range(3):
        held = Cookies.of(client)
        known |= {held.access, held.session, cookie(client, "__Host-flask"),
                  tokens.refresh_token(keys, held.session)}
        clock.advance(5)
        client.get("/sessions")
    phone = browser(app)
    assert login(phone).status_code == 302
    known |= {cookie(phone, ACCESS_COOKIE), cookie(phone, SESSION_COOKIE)}
    submit(client, "/password/forgot", {"email": ADA})
    follow("Reset your password", "/password/reset#", new_password=new_password)
    known |= {cookie(client, ACCESS_COOKIE), cookie(client, SESSION_COOKIE)}
    client.get("/metrics", headers={"Authorization": "Bearer metrics-token-for-the-tests-0123"})
    submit(client, "/logout", {}, form_page="/account")
    smtp.mailbox.about(ADA, "Your password was reset")
    for user in User.select():
        known |= {user.password_hash, user.password_hash.rsplit("$", 1)[-1]}
    known |= {row.token_hash for row in RefreshToken.select()}
    known |= {row.current_hash for row in LoginSession.select()}
    assert OutboxMessage.select().count() >= 3 and len(links) == 2
    written = capfd.readouterr().err
    assert '"route": "/password/reset"' in written  # the flows were logged
    assert '"event": "password_reset"' in written
    leaks = {secret for secret in known if secret and secret in written}
    assert leaks == set()


def test_what_the_readme_says_is_in_the_log_is_on_stderr(make_app, tmp_path, capfd):
    """Development mail in full, a 500's reference beside its traceback, the warning about an
    untrusted X-Forwarded-For, and each security event as a JSON line."""
    from app import mail, settings

    app = make_app(GATEHOUSE_ENV="development", GATEHOUSE_EMAIL_VERIFICATION="required")
    app.instance_path = str(tmp_path / "instance")
    settings.init_app(app)
    mail.init_app(app)

    def broken():
        raise RuntimeError("a bug")

    app.add_url_rule("/broken", "broken", broken)
    client = browser(app)
    client.get("/healthz", headers={"X-Forwarded-For": "198.51.100.1"})
    register(client, "tess@example.com")
    mail.send_pending(app)
    reference = client.get("/broken").get_data(as_text=True).split("Reference ")[1][:12]
    app.extensions["gatehouse_mail"].dispatcher.stop()
    from polling import eventually
    written = []
    eventually(lambda: written.append(capfd.readouterr().err) or
               "Confirm your email address" in "".join(written), within=10,
               what="the development mail in the log")
    log = "".join(written)
    assert "WARNING gatehouse.security A request from" in log  # X-Forwarded-For, untrusted
    assert f"ERROR gatehouse.errors unhandled error, reference {reference}" in log
    assert "Traceback" in log and "RuntimeError: a bug" in log
    assert '"event": "registered"' in log
    assert "/email/verify#" in log  # development only: the message in full
