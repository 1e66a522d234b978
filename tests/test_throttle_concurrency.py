"""Throttles under real concurrency (gunicorn, 2 workers of 8 threads, as the README serves):
correct passwords arriving together are never refused because of each other, wrong ones never
get more password checks than the limit, and a per-address limit holds however many requests
arrive at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from servers import Server, _form, request, server_env, sign_up
from support import PASSWORD, SECRET

pytestmark = pytest.mark.slow

EMAIL = "ada@example.com"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# The production cost of a password check (the README's defaults): how long attempts are in
# flight together is what this is about.
REAL_ARGON2 = {"GATEHOUSE_ARGON2_TIME_COST": 2, "GATEHOUSE_ARGON2_MEMORY_KIB": 19 * 1024}


def at_once(server: Server, path: str, fields: list[dict[str, str]]) -> list[int]:
    """POST each of ``fields`` to ``path`` from a browser of its own (its CSRF token fetched
    first), all released at the same instant; their statuses."""
    jars: list[dict[str, str]] = [{} for _ in fields]
    bodies = [urlencode({"csrf_token": _form(server, path, jar), **each}).encode()
              for jar, each in zip(jars, fields, strict=True)]
    barrier = threading.Barrier(len(jars), timeout=60)

    def post(n: int) -> int:
        barrier.wait()
        return request(server.port, "POST", path, cookies=jars[n], body=bodies[n],
                       headers=FORM, timeout=60).status

    with ThreadPoolExecutor(len(jars)) as pool:
        return list(pool.map(post, range(len(jars))))


def sign_ins(password: str, n: int) -> list[dict[str, str]]:
    return [{"email": EMAIL, "password": password}] * n


def test_parallel_correct_sign_ins_from_one_address_are_all_accepted(database_url, make_app):
    """A test suite whose workers share one user, or an office behind one NAT: 20 correct
    sign-ins at the same instant, four times over, with the default limits (10 per account,
    50 per address). None is refused, and nothing stays counted against the address."""
    from app.models import Throttle

    make_app()
    with Server(server_env(database_url, SECRET, **REAL_ARGON2), workers=2,
                threads=8) as running:
        sign_up(running, EMAIL, PASSWORD)
        statuses = [status for _ in range(4) for status in at_once(
            running, "/login", sign_ins(PASSWORD, 20))]
    refused = statuses.count(429)
    print(f"refused {refused} of {len(statuses)} correct sign-ins")
    assert statuses == [302] * 80
    assert sum(row.failures for row in Throttle.select().where(
        Throttle.key.startswith("ip:") | Throttle.key.startswith("account:"))) == 0


def test_a_hundred_parallel_wrong_passwords_get_the_limits_checks(database_url, make_app):
    """Each attempt is counted before its password is checked: of 100 at once, exactly the
    limit's 10 are checked, the rest refused; then the right password is refused too (the
    account is locked for this browser, which it has never seen)."""
    from app.models import SecurityEvent, User

    make_app()
    with Server(server_env(database_url, SECRET), workers=2, threads=8) as running:
        sign_up(running, EMAIL, PASSWORD)
        statuses = at_once(running, "/login", sign_ins("wrong, and guessed", 100))
        after = at_once(running, "/login", sign_ins(PASSWORD, 1))
    checks = SecurityEvent.select().where(SecurityEvent.user == User.get().id,
                                          SecurityEvent.kind == "sign_in_failed").count()
    print(f"{checks} password checks for 100 parallel wrong passwords")
    assert checks == 10
    assert sorted(statuses) == [401] * 10 + [429] * 90
    assert after == [429]


def test_the_forgotten_password_limit_per_address_holds_under_concurrency(database_url,
                                                                          make_app):
    """60 requests at once from one address: exactly the 10 the address is allowed are
    served; the rest are refused."""
    make_app()
    with Server(server_env(database_url, SECRET), workers=2, threads=8) as running:
        statuses = at_once(running, "/password/forgot",
                           [{"email": f"someone{n}@example.com"} for n in range(60)])
    print(f"forgot-password: {statuses.count(200)} of 60 served")
    assert sorted(statuses) == [200] * 10 + [429] * 50
