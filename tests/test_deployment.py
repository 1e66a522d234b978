"""The deployment the README recommends: nginx (``deploy/nginx.conf``, as shipped) in front of
gunicorn's sync workers, over HTTPS with a certificate made for the test. Under slow clients:
50 clients each send a request one byte a second and hold their connections, while a
signed-in person's requests still succeed. Plain HTTP only redirects, and nginx names no
version.

Exposed directly, the same two sync workers are each held by the first slow client that
reaches them, and the person waits for as long as the slow clients care to take.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from polling import eventually
from servers import ROOT, Reply, Server, free_port, request, server_env, sign_up
from support import PASSWORD, SECRET, skip_or_fail

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 50
HOLD_SECONDS = 8  # within nginx's 10 s client_header_timeout: every slow client stays
PERSON_REQUESTS = 10
SITE = "login.example.com"  # the name deploy/nginx.conf is written for


class Front:
    """nginx as the tests' ``servers`` helpers see a server: HTTPS on ``port``, trusting only
    the test's certificate; ``http_port`` is its plain-HTTP side."""

    def __init__(self, port: int, http_port: int, tls: ssl.SSLContext) -> None:
        self.port, self.http_port, self.tls = port, http_port, tls

    def request(self, method: str, path: str, *, cookies: dict[str, str] | None = None,
                body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 30) -> Reply:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                                 context=self.tls)
        try:
            sent = {"Host": SITE, **(headers or {})}
            if cookies:
                sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items() if v)
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, response.getheaders(), response.read())
        finally:
            connection.close()


def certificate(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for SITE and 127.0.0.1, made for this test only."""
    openssl = shutil.which("openssl")
    if openssl is None:
        skip_or_fail("openssl is not installed (apt-get install openssl; .ci/run installs it)")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", f"/CN={SITE}",
                    "-addext", f"subjectAltName=DNS:{SITE},IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def nginx_config(tmp: Path, ports: tuple[int, int], upstream: int,
                 cert: tuple[Path, Path]) -> Path:
    """deploy/nginx.conf as shipped, on test ports and with the test's certificate, inside a
    minimal nginx.conf. Only addresses and file paths change: every other line is as shipped."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    http_port, https_port = ports
    for shipped, used in {"listen 80;": f"listen 127.0.0.1:{http_port};",
                          "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
                          "127.0.0.1:8000": f"127.0.0.1:{upstream}"}.items():
        assert site.count(shipped) == 1, shipped
        site = site.replace(shipped, used)
    site = re.sub(r"^\s*listen \[::\].*\n", "", site, flags=re.M)  # no IPv6 needed here
    site = re.sub(r"ssl_certificate \S+;", f"ssl_certificate {cert[0]};", site)
    site = re.sub(r"ssl_certificate_key \S+;", f"ssl_certificate_key {cert[1]};", site)
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
    cert = certificate(tmp_path)
    make_app()  # the schema, emptied afterwards
    env = server_env(database_url, SECRET, GATEHOUSE_TRUSTED_PROXIES=1)
    with Server(env, workers=2, threads=1) as app_server:
        ports = (free_port(), free_port())
        config = nginx_config(tmp_path, ports, app_server.port, cert)
        log = tmp_path / "nginx.log"
        with log.open("wb") as output:
            process = subprocess.Popen([nginx, "-p", str(tmp_path), "-e", str(log),
                                        "-c", str(config)], stderr=output)
        try:
            for port in ports:
                wait_for_port(port, process, log)
            yield Front(ports[1], ports[0], ssl.create_default_context(cafile=str(cert[0])))
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


def hold_slow_clients(front: Front, started: threading.Event, stop: threading.Event,
                      open_at_end: list[int]) -> None:
    """Open SLOW_CLIENTS connections, each through the TLS handshake, and send each a request
    one byte a second until ``stop``; record how many were still open then."""
    request_bytes = f"POST /login HTTP/1.1\r\nHost: {SITE}\r\nContent-Length: 10\r\n".encode()
    sockets = [front.tls.wrap_socket(socket.create_connection(("127.0.0.1", front.port),
                                                              timeout=5),
                                     server_hostname=SITE)
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
                            args=(behind_nginx, started, stop, open_at_end))
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


def test_https_only_no_version_and_plain_http_redirects(behind_nginx):
    """Plain HTTP serves nothing but a redirect to the site's own name (never the Host the
    client sent); over HTTPS Gatehouse sees the scheme and sends HSTS; nginx says its name,
    never its version, in headers and on its own error pages."""
    for host in (SITE, "evil.example"):
        plain = request(behind_nginx.http_port, "GET", "/login?next=/sessions",
                        headers={"Host": host})
        assert plain.status == 301
        assert plain.header("Location") == f"https://{SITE}/login?next=/sessions"
        assert plain.header("Server") == "nginx" and b"nginx/" not in plain.body
        assert plain.header("Set-Cookie") is None
    page = behind_nginx.request("GET", "/login")
    assert page.status == 200 and page.header("Server") == "nginx"
    assert page.header("Strict-Transport-Security") == "max-age=63072000; includeSubDomains"
    too_large = behind_nginx.request("POST", "/login", body=b"x" * 70_000)
    assert too_large.status == 413 and b"<center>nginx</center>" in too_large.body
