"""People using a running server over HTTP, each from their own loopback address, with their
own cookie jar, keeping a record of every answer (status and time) for the load tests."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from bs4 import BeautifulSoup
from servers import Reply, request

# What a signed-in person asks for again and again, and the status each must answer.
SIGNED_IN_ROUND = [("/healthz", 200), ("/", 200), ("/account", 200), ("/api/me", 200),
                   ("/sessions", 200), ("/login", 200)]


HASHING = {("POST", "/register"), ("POST", "/login")}


@dataclass
class Visitor:
    port: int
    source: str  # 127.0.0.x: each visitor is its own network to the throttles
    jar: dict[str, str] = field(default_factory=dict)
    answers: list[tuple[str, str, int, float]] = field(default_factory=list)
    unexpected: list[tuple[str, str, int]] = field(default_factory=list)

    def send(self, method: str, path: str, expect: int, **kwargs) -> Reply:
        started = time.perf_counter()
        reply = request(self.port, method, path, cookies=self.jar, source=self.source,
                        timeout=60, **kwargs)
        self.answers.append((method, path, reply.status, time.perf_counter() - started))
        if reply.status != expect:
            self.unexpected.append((method, path, reply.status))
        self.jar.update(reply.cookies)
        self.jar = {name: value for name, value in self.jar.items() if value}
        return reply

    def submit(self, path: str, data: dict[str, str], expect: int = 302,
               form_page: str | None = None) -> Reply:
        """Fetch the form's page for its CSRF token, then post ``data`` as a browser would."""
        form = self.send("GET", form_page or path, 200)
        field_ = BeautifulSoup(form.body, "html.parser").find("input",
                                                              attrs={"name": "csrf_token"})
        token = field_["value"] if field_ else ""
        return self.send("POST", path, expect,
                         body=urlencode({"csrf_token": token, **data}).encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})


def sign_up_and_out(visitor: Visitor, email: str, password: str, sign_out: bool = True,
                    confirm: Callable[[str], str] | None = None) -> None:
    """Register, sign in, open the account and sessions pages, and (by default) sign out.

    With ``confirm`` (the server requires verified addresses), registering answers "check
    your email", and the link ``confirm(email)`` returns is opened and its button pressed.
    """
    if confirm is None:
        visitor.submit("/register", {"email": email, "password": password})
    else:
        visitor.submit("/register", {"email": email, "password": password}, expect=200)
        link = urlsplit(confirm(email))  # the token is its fragment
        visitor.submit(link.path, {"token": link.fragment, "act": "1", "password": password})
    visitor.submit("/login", {"email": email, "password": password})
    visitor.send("GET", "/account", 200)
    visitor.send("GET", "/sessions", 200)
    if sign_out:
        visitor.submit("/logout", {}, form_page="/account")
        visitor.send("GET", "/account", 302)


def drive_sequentially(visitor: Visitor, count: int, within: float = 180) -> int:
    """Up to ``count`` requests one after another, round the signed-in pages, for at most
    ``within`` seconds; how many answered as expected."""
    before, sent = len(visitor.unexpected), 0
    deadline = time.monotonic() + within
    while sent < count and time.monotonic() < deadline:
        path, status = SIGNED_IN_ROUND[sent % len(SIGNED_IN_ROUND)]
        visitor.send("GET", path, status)
        sent += 1
    return sent - (len(visitor.unexpected) - before)


def flow_figures(visitors: list[Visitor]) -> dict:
    answers = [answer for visitor in visitors for answer in visitor.answers]
    slowest = max(answers, key=lambda answer: answer[3])
    # Registering and signing in hash a password (argon2id, tens of milliseconds of CPU each):
    # with 20 at once on two cores they queue for the CPU, which says nothing of the server.
    unhashed = [a for a in answers if (a[0], a[1]) not in HASHING]
    return {
        "requests": len(answers),
        "statuses": {str(k): v for k, v in sorted(Counter(a[2] for a in answers).items())},
        "slowest_ms": round(slowest[3] * 1000, 1),
        "slowest_request": f"{slowest[0]} {slowest[1]}",
        "over_1s": sum(1 for answer in answers if answer[3] > 1),
        "slowest_ms_without_hashing": round(max(a[3] for a in unhashed) * 1000, 1),
        "unexpected": [u for visitor in visitors for u in visitor.unexpected],
    }
