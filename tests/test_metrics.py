"""``/metrics``: behind GATEHOUSE_METRICS_TOKEN, the series operators alert on, labelled by
route templates and outcomes only; under gunicorn, the sum of every worker's counts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from polling import eventually
from prometheus_client import REGISTRY
from servers import Server, server_env
from support import SECRET, Cookies, browser, login, register, reset_database, signed_up, submit

from app.carriers import ACCESS_COOKIE
from app.mail import outbox
from app.mail.transport import MailError

TOKEN = "metrics-token-for-the-tests-0123"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """The change of each sample named in ``expect`` across the block."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self.samples = samples

    def __enter__(self) -> Delta:
        self.before = [value(name, **labels) for name, labels in self.samples]
        return self

    def __exit__(self, *exc) -> None:
        self.changes = [value(name, **labels) - before
                        for (name, labels), before in zip(self.samples, self.before, strict=True)]


def scrape(client, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/metrics", headers=headers)


def test_metrics_answer_only_the_token(make_app):
    assert scrape(make_app().test_client()).status_code == 404  # no token set: no metrics
    client = make_app(GATEHOUSE_METRICS_TOKEN=TOKEN).test_client()
    assert scrape(client, None).status_code == 401
    assert scrape(client, TOKEN + "x").status_code == 401
    reply = scrape(client)
    assert reply.status_code == 200 and reply.mimetype == "text/plain"
    text = reply.get_data(as_text=True)
    for series in ("gatehouse_request_duration_seconds_bucket", "gatehouse_sign_ins_total",
                   "gatehouse_rotations_total", "gatehouse_sessions_ended_total",
                   "gatehouse_throttled_total", "gatehouse_mail_total"):
        assert f"# TYPE {series.removesuffix('_bucket').removesuffix('_total')}" in text


def test_requests_are_counted_by_route_template_never_by_path(app):
    client = browser(app)
    count = "gatehouse_request_duration_seconds_count"
    with Delta((count, {"method": "GET", "route": "/sessions/<session_id>", "status": "3xx"}),
               (count, {"method": "GET", "route": "<unmatched>", "status": "4xx"})) as d:
        client.get("/sessions/abcdefabcdef")
        client.get("/no/such/page/4711")
    assert d.changes == [1, 1]
    labels = {s.labels.get("route") for m in REGISTRY.collect() for s in m.samples}
    assert not any("abcdef" in str(r) or "4711" in str(r) for r in labels)


def test_sign_ins_are_counted_by_method_and_outcome(app):
    client = browser(app)
    with Delta(("gatehouse_sign_ins_total", {"method": "password", "outcome": "success"}),
               ("gatehouse_sign_ins_total", {"method": "password", "outcome": "failure"})) as d:
        signed_up(client)
        login(browser(app), password="a wrong password for sure")
    assert d.changes == [1, 1]


def rotations(*outcomes: str):
    return Delta(*(("gatehouse_rotations_total", {"outcome": o}) for o in outcomes))


def test_forgiven_replays_are_counted_apart_from_reuse(make_app, clock):
    app = make_app(GATEHOUSE_ACCESS_TOKEN_TTL=60)
    client = browser(app)
    signed_up(client)
    old = Cookies.of(client)
    with rotations("rotated", "grace", "lost_response", "reuse") as d:
        clock.advance(120)
        client.delete_cookie(ACCESS_COOKIE)
        assert client.get("/api/me").status_code == 200  # rotated
        twin = browser(app)
        Cookies(None, old.session).put(twin)
        assert twin.get("/api/me").status_code == 200  # the same value again: grace
        clock.advance(60)  # past the grace window; the successor is not proven yet
        Cookies(None, old.session).put(twin)
        assert twin.get("/api/me").status_code == 200  # lost response
        assert client.get("/api/me").status_code == 200  # the successor's token proves it
        Cookies(None, old.session).put(twin)
        assert twin.get("/api/me").status_code == 401  # now a copy: reuse
    assert d.changes == [1, 1, 1, 1]


def test_ended_sessions_and_throttles_are_counted(make_app):
    app = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=2)
    client = browser(app)
    with Delta(("gatehouse_sessions_ended_total", {"reason": "signed_out"}),
               ("gatehouse_throttled_total", {})) as d:
        signed_up(client)
        submit(client, "/logout", {}, form_page="/account")
        for _ in range(3):
            login(browser(app), password="a wrong password for sure")
    assert d.changes == [1, 1]


def test_mail_sent_and_failed_are_counted(mail_app, smtp):
    register(browser(mail_app))
    smtp.mailbox.wait_for("ada@example.com")
    eventually(lambda: value("gatehouse_mail_total", outcome="sent") >= 1, within=10,
               what="the sent mail counted")

    class Down:
        def send(self, message):
            raise MailError("ConnectionRefusedError: the server is down")

    with Delta(("gatehouse_mail_total", {"outcome": "failed"})) as d, mail_app.app_context():
        with mail_app.test_request_context():
            from app.mail import queue
            queue("bob@example.com", "notice", "A subject", now=time.time(), what="w", todo="t")
        outbox.send_due(Down(), sender="x@example.com", domain="example.com", now=time.time)
    assert d.changes == [1]


@pytest.mark.slow
def test_two_gunicorn_workers_are_summed(database_url, tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    stale = directory / "counter_99999.db"
    stale.write_bytes(b"left by an earlier run")
    env = server_env(database_url, SECRET, GATEHOUSE_METRICS_TOKEN=TOKEN,
                     PROMETHEUS_MULTIPROC_DIR=directory)
    try:
        with Server(env, workers=2) as server:
            check_summed(server, stale)
    finally:
        reset_database()  # a shared PostgreSQL database is left empty


def check_summed(server: Server, stale) -> None:
    assert not stale.exists()  # wiped at start
    before = home_pages(server)  # a route the server's start (its /healthz polls) never hit
    served: dict[str, int] = {}

    def one(_: int) -> str:
        reply = server.request("GET", "/")
        assert reply.status == 200
        return reply.header("X-Request-ID").rsplit("-", 1)[0]  # the worker's prefix

    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            for worker in pool.map(one, range(20)):
                served[worker] = served.get(worker, 0) + 1
            if len(served) == 2:
                break
    assert len(served) == 2, "both workers should have served"
    # Exactly every request either worker answered: both workers' files are summed.
    assert before == 0 and home_pages(server) == sum(served.values())


def home_pages(server: Server) -> float:
    reply = server.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status == 200
    return sum(float(line.rsplit(" ", 1)[1]) for line in reply.body.decode().splitlines()
               if line.startswith("gatehouse_request_duration_seconds_count{")
               and 'route="/"' in line)
