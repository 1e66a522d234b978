"""Real servers for tests: gunicorn processes on 127.0.0.1, and a raw HTTP helper.

Everything here talks to loopback only, and every wait is bounded.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

from polling import eventually

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies this response sets (a cleared cookie maps to "")."""
        jar = {}
        for name, value in self.headers:
            if name.lower() == "set-cookie":
                parsed = SimpleCookie()
                parsed.load(value)
                for key, morsel in parsed.items():
                    jar[key] = "" if morsel["max-age"] == "0" else morsel.value
        return jar

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def request(port: int, method: str, path: str, *, cookies: dict[str, str] | None = None,
            body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 30, source: str | None = None) -> Reply:
    """One request to 127.0.0.1:``port``; ``source`` (another loopback address such as
    127.0.0.9) makes the client appear as a different network, as throttles see it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                            source_address=(source, 0) if source else None)
    try:
        sent = dict(headers or {})
        if cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items() if v)
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


@dataclass
class Server:
    """A gunicorn serving ``app`` (default ``wsgi:app``; a test-only entry point in tests/ is
    importable too) with the given environment."""

    env: dict[str, str]
    app: str = "wsgi:app"
    health: str = "/healthz"  # answers 200 once a worker serves
    workers: int = 2
    threads: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log: object = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        return self.launch().wait_ready()

    def launch(self) -> Server:
        """Start gunicorn without waiting for it (to start several servers at once)."""
        env = {**os.environ, **self.env}
        command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                   "--workers", str(self.workers), "--threads", str(self.threads),
                   "--pythonpath", str(ROOT / "tests"),
                   "--graceful-timeout", "5", "--log-level", "warning", self.app]
        # A file, not a pipe: a chatty server must never block on a full pipe buffer.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=self.log)
        return self

    def wait_ready(self) -> Server:
        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.output()}")
            try:
                return request(self.port, "GET", self.health, timeout=2).status == 200
            except OSError:
                return False

        try:
            eventually(answers, within=START_TIMEOUT, every=0.1,
                       what=f"gunicorn answering {self.health}")
        except AssertionError:
            self.stop()
            raise RuntimeError(f"gunicorn did not answer {self.health} in time") from None
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()

    def output(self) -> str:
        """What the server wrote to stderr so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def request(self, method: str, path: str, **kwargs) -> Reply:
        return request(self.port, method, path, **kwargs)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:  # pytest shows this beside the failure: worker timeouts etc.
            print(f"--- gunicorn on port {self.port} wrote:\n{self.output()}")
        self.stop()


def server_env(database_url: str, secret: str, **settings: object) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "SECRET_KEY": secret, "GATEHOUSE_ENV": "production",
            "GATEHOUSE_ARGON2_TIME_COST": "1", "GATEHOUSE_ARGON2_MEMORY_KIB": "8",
            "GATEHOUSE_EMAIL_VERIFICATION": "off",
            **{k: str(v) for k, v in settings.items()}}


def _form(server: Server, path: str, jar: dict[str, str]) -> str:
    from support import csrf_token_in

    reply = server.request("GET", path, cookies=jar)
    jar.update(reply.cookies)
    return csrf_token_in(reply.body)


def post_form(server: Server, path: str, data: dict[str, str], jar: dict[str, str],
              form_page: str | None = None) -> Reply:
    """Submit a real form over HTTP: fetch its CSRF token first, keep cookies in ``jar``."""
    from urllib.parse import urlencode

    token = _form(server, form_page or path, jar)
    reply = server.request("POST", path, cookies=jar,
                           body=urlencode({"csrf_token": token, **data}).encode(),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    jar.update(reply.cookies)
    return reply


def sign_up(server: Server, email: str, password: str,
            user_agent: str = "gatehouse-tests") -> dict[str, str]:
    """Register and sign in over HTTP; return the browser's cookies."""
    jar: dict[str, str] = {}
    post_form(server, "/register", {"email": email, "password": password}, jar)
    return sign_in(server, email, password, jar)


def sign_in(server: Server, email: str, password: str,
            jar: dict[str, str] | None = None) -> dict[str, str]:
    """Sign in over HTTP (a new browser unless ``jar`` is given); return its cookies."""
    jar = {} if jar is None else jar
    reply = post_form(server, "/login", {"email": email, "password": password}, jar)
    assert reply.status == 302, reply.body[:500]
    return jar
