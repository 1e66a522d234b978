"""The deployment the README recommends, under slow clients: nginx (``deploy/nginx.conf``, as
shipped) in front of gunicorn's sync workers. 50 clients each send a request one byte a second
and hold their connections, while a signed-in person's requests still succeed.

Exposed directly, the same two sync workers are each held by the first slow client that
reaches them, and the person waits for as long as the slow clients care to take.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from polling import eventually
from servers import ROOT, Server, free_port, request, server_env, sign_up
from support import PASSWORD, SECRET, skip_or_fail

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 50
HOLD_SECONDS = 8  # within nginx's 10 s client_header_timeout: every slow client stays
PERSON_REQUESTS = 10


class Front:
    """nginx as the tests' ``servers`` helpers see a server: a port that answers requests."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, **kwargs):
        return request(self.port, method, path, **kwargs)


def nginx_config(tmp: Path, listen: int, upstream: int) -> Path:
    """deploy/nginx.conf as shipped, on test ports, inside a minimal nginx.conf."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "listen 80;" in site and "127.0.0.1:8000" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    site = site.replace("127.0.0.1:8000", f"127.0.0.1:{upstream}")
    temp = "\n".join(f"{kind}_temp_path {tmp / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    path = tmp / "nginx.conf"
    path.write_text(f"""
        {"user root;" if os.geteuid() == 0 else ""}
        daemon off; worker_processes 1; pid {tmp / "nginx.pid"};
        error_log {tmp / "error.log"} warn;
        events {{ worker_connections 512; }}
        http {{ access_log off; {temp}
        {site} }}
    """)
    return path


@pytest.fixture
def behind_nginx(database_url, make_app, tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        skip_or_fail("nginx is not installed (apt-get install nginx; .ci/run installs it)")
    make_app()  # the schema, emptied afterwards
    env = server_env(database_url, SECRET, GATEHOUSE_TRUSTED_PROXIES=1)
    with Server(env, workers=2, threads=1) as app_server:
        port = free_port()
        config = nginx_config(tmp_path, port, app_server.port)
        log = tmp_path / "nginx.log"
        with log.open("wb") as output:
            process = subprocess.Popen([nginx, "-p", str(tmp_path), "-e", str(log),
                                        "-c", str(config)], stderr=output)
        try:
            wait_for_port(port, process, log)
            yield Front(port)
        finally:
            process.terminate()
            process.wait(timeout=10)


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    eventually(listening, within=10, every=0.1, what="nginx listening")


def hold_slow_clients(port: int, started: threading.Event, stop: threading.Event,
                      open_at_end: list[int]) -> None:
    """Open SLOW_CLIENTS connections and send each a request one byte a second until
    ``stop``; record how many were still open then."""
    request_bytes = b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n"
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=5)
               for _ in range(SLOW_CLIENTS)]
    sent = 0
    while not stop.wait(1.0 if sent else 0) and sent < len(request_bytes):
        for sock in sockets:
            try:
                sock.send(request_bytes[sent:sent + 1])
            except OSError:
                pass
        sent += 1
        started.set()
    still_open = 0
    for sock in sockets:
        try:
            sock.send(request_bytes[sent:sent + 1])
            still_open += 1
        except OSError:
            pass
        sock.close()
    open_at_end.append(still_open)


def test_a_signed_in_person_is_served_while_50_slow_clients_hold_connections(behind_nginx):
    jar = sign_up(behind_nginx, "ada@example.com", PASSWORD)
    started, stop, open_at_end = threading.Event(), threading.Event(), []
    slow = threading.Thread(target=hold_slow_clients,
                            args=(behind_nginx.port, started, stop, open_at_end))
    slow.start()
    try:
        assert started.wait(30), "the slow clients did not connect"
        statuses = []
        for _ in range(PERSON_REQUESTS):
            statuses.append(behind_nginx.request("GET", "/api/me", cookies=jar,
                                                 timeout=5).status)
            time.sleep(HOLD_SECONDS / PERSON_REQUESTS / 2)
    finally:
        stop.set()
        slow.join(timeout=30)
    assert statuses == [200] * PERSON_REQUESTS
    assert open_at_end == [SLOW_CLIENTS]  # they were held, not refused, the whole time
