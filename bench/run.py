"""The benchmark driver: seed, serve under gunicorn, drive with wrk, print a Markdown table.

Every figure is also given as a ratio to a bare Flask route measured in the same run, because
on a shared machine the ratios are what stay comparable from one run to the next.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psutil

from app import create_app, grants, settings, tokens
from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.db import database
from app.models import LoginSession, RefreshToken, SecurityEvent, User
from app.settings import ISSUER
from bench import jwt_reference, seed
from bench.seed import is_postgres

ROOT = Path(__file__).resolve().parent.parent
# The tests' server helper, with the sibling modules it imports.
sys.path.insert(0, str(ROOT / "tests"))
from servers import Server  # noqa: E402

LUA = ROOT / "bench" / "drive.lua"
PASSWORD = "correct horse battery staple"
BROWSERS = 1000  # distinct signed-in browsers cycled by the authenticated phases
WARM_UP = 2  # seconds of the authenticated page, unmeasured, before those phases
WORKERS = 2
BARE_BODY = b"Hello from a bare Flask route."


@dataclass
class Figure:
    scenario: str
    rps: float | None
    p50_ms: float | None = None
    p99_ms: float | None = None
    target: str = ""
    note: str = ""
    result: dict | None = None
    bare_rps: float | None = None  # the yardstick measured just before this figure


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__,
        epilog="DATABASE_URL=postgresql://... runs it on PostgreSQL; that database is emptied "
               "and reseeded (a database holding accounts not created by the benchmark is "
               "refused). Without it, a temporary SQLite file is used.")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--million", action="store_true",
                        help="also measure the authenticated page with 1,000,000 sessions")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk phase")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed; on Debian or Ubuntu: apt-get install wrk")
        return 2
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as workdir:
        bench = Bench(args, Path(workdir))
        figures = bench.run()
    print(render(figures, bench))
    return 0 if bench.correct else 1


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}"
        # No mail: the benchmark measures sign-in and sessions, not a mail server.
        self.env = {"DATABASE_URL": self.url, "SECRET_KEY": secrets.token_urlsafe(48),
                    "GATEHOUSE_ENV": "production", "GATEHOUSE_EMAIL_VERIFICATION": "off"}
        # The driver's own app: same environment as the servers, so same keys and argon2.
        self.app = create_app({"DATABASE_URL": self.url, "SECRET_KEY": self.env["SECRET_KEY"],
                               "GATEHOUSE_EMAIL_VERIFICATION": "off"})
        self.correct = True
        self.notes: list[str] = []
        self.peak_rss_mb = 0.0
        self.password_hash = ""
        self.bare_runs: list[Figure] = []

    # --- orchestration ---------------------------------------------------------------------

    def run(self) -> list[Figure]:
        with self.app.app_context():
            self.engine = "PostgreSQL" if is_postgres() else "SQLite (WAL)"
            # The ratios to the bare route this project aims for, per engine.
            self.targets = ({"page": "≥ 0.80× bare", "rotation": "≥ 0.25× bare"} if is_postgres()
                            else {"page": "≥ 0.85× bare", "rotation": "≥ 0.35× bare"})
            started = time.monotonic()
            self.password_hash = settings.current().hasher.hash(PASSWORD)
            self.notes.append(f"argon2 hash of one password: "
                              f"{(time.monotonic() - started) * 1000:.0f} ms in the driver")
            self.reseed(self.args.sessions)
        # The yardstick stays up (idle) all along: every phase is preceded by a run of it, and
        # its ratio is to that adjacent run, so that load drifting on a shared machine skews
        # both sides alike.
        with self.server("bench.bare:app", health="/") as self.yardstick:
            figures = [self.jwt_reference(), *self.gatehouse(), *self.million()]
        hardened, page = figures[1], figures[2]
        self.notes.append(f"authenticated page ÷ hardened bare route: "
                          f"{page.rps / page.bare_rps / (hardened.rps / hardened.bare_rps):.2f} "
                          "(what authentication itself costs, with the cookies and headers "
                          "every signed-in page carries set aside)")
        rates = [f.bare_rps for f in figures if f.bare_rps]
        self.notes.append(f"bare Flask route over the run: {min(rates):,.0f} to "
                          f"{max(rates):,.0f} req/s; each ratio is to the run just before it")
        bare = self.bare_runs
        return [Figure("bare Flask route (yardstick, mean of the runs)",
                       statistics.mean(r.rps for r in bare),
                       statistics.median(r.p50_ms for r in bare),
                       statistics.median(r.p99_ms for r in bare),
                       bare_rps=statistics.mean(r.rps for r in bare)), *figures]

    def reseed(self, sessions: int) -> None:
        started = time.monotonic()
        with self.app.app_context(), database.connection_context():
            seed.reset()
            seed.seed(settings.current().keys, users=self.args.users, sessions=sessions,
                      password_hash=self.password_hash, now=time.time())
        self.sessions = sessions
        self.notes.append(f"seeded {self.args.users:,} users and {sessions:,} sessions in "
                          f"{time.monotonic() - started:.1f} s")

    def server(self, app: str, health: str = "/healthz") -> Server:
        return Server(env=self.env, app=app, health=health, workers=WORKERS)

    # --- phases ----------------------------------------------------------------------------

    def jwt_reference(self) -> Figure:
        line = jwt_reference.access_cookie("bench-user", self.env["SECRET_KEY"])
        with self.server("bench.jwt_reference:app") as server:
            self.expect(server, "/", line, 200)
            return self.wrk(server, "Flask-JWT-Extended `@jwt_required()`, HS256 cookie, "
                            "no revocation check (reference)", "/", [line], "get")

    def gatehouse(self) -> list[Figure]:
        with self.server("bench.site:app") as server:
            flask_cookie, csrf = self.form_token(server)
            browsers = self.browsers(flask_cookie)
            self.expect(server, "/bench/page", browsers[0], 200, BARE_BODY)
            self.warm(server, browsers)
            figures = [
                self.wrk(self.yardstick, "bare Flask route + a signed-in browser's cookies + "
                         "Gatehouse's security headers, no authentication", "/hardened",
                         browsers, "get"),
                self.wrk(server, "authenticated page (valid access cookie + liveness check)",
                         "/bench/page", browsers, "get", target=self.targets["page"]),
                self.wrk(server, "authenticated `/account` (real template, CSRF token)",
                         "/account", browsers, "get"),
                self.wrk(server, "authenticated `GET /api/me` (JSON)", "/api/me", browsers,
                         "get", target=self.targets["page"]),
                self.rotation(server, flask_cookie),
                # Before sign-in: signing in beyond the cap of live sessions ends seeded ones.
                *self.app_calls(server),
                self.sign_in(server, flask_cookie, csrf),
            ]
            self.peak_rss_mb = max(self.peak_rss_mb, worker_peak_rss_mb(server))
        return figures

    def million(self) -> list[Figure]:
        if not self.args.million:
            return [Figure("authenticated page, 1,000,000 sessions", None,
                           note="not run; pass --million")]
        self.reseed(1_000_000)
        with self.server("bench.site:app") as server:
            flask_cookie, _ = self.form_token(server)
            browsers = self.browsers(flask_cookie)
            self.expect(server, "/bench/page", browsers[0], 200, BARE_BODY)
            self.warm(server, browsers)
            figure = self.wrk(server, "authenticated page, 1,000,000 sessions", "/bench/page",
                              browsers, "get", target="within 10 % of 100 k")
            self.peak_rss_mb = max(self.peak_rss_mb, worker_peak_rss_mb(server))
        return [figure]

    def rotation(self, server: Server, flask_cookie: str) -> Figure:
        """Each request presents a different session's handle and no access cookie."""
        live = seed.live_session_ids(self.sessions)[BROWSERS:]
        lines = [f"{SESSION_COOKIE}={seed.handle(i)}; {flask_cookie}" for i in live]
        self.expect(server, "/bench/page", lines[0], 200, BARE_BODY)
        figure = self.wrk(server, "rotating request (no access cookie, valid session cookie, "
                          "own session each)", "/bench/page", lines[1:], "once",
                          target=self.targets["rotation"])
        self.check_rotations(figure)
        return figure

    def sign_in(self, server: Server, flask_cookie: str, csrf: str) -> Figure:
        bodies = [urlencode({"csrf_token": csrf, "email": seed.email(u), "password": PASSWORD})
                  for u in range(self.args.users)]
        before = self.count_sign_ins()
        figure = self.wrk(server, "sign-in (POST /login over HTTP with a real CSRF token, "
                          "argon2id verify)", "/login", bodies, "post", cookie=flask_cookie)
        time.sleep(1)
        made = self.count_sign_ins() - before
        figure.note = f"{made} sessions started for {figure.result['requests']} responses"
        if not figure.result["requests"] <= made <= figure.result["requests"] + \
                self.args.connections:
            self.fail(f"sign-in: {made} sessions started for {figure.result['requests']} "
                      "responses")
        return figure

    def app_calls(self, server: Server) -> list[Figure]:
        """An app's calls: ``GET /api/me`` with a bearer token (the same sessions as the
        browsers'), then the token endpoint's refresh, each request with its own app session
        (from the far end of the seeded ones: the rotation phase starts at the near end)."""
        with self.app.app_context(), database.connection_context():
            ext, now = settings.current(), time.time()
            client_id = grants.register("Bench", ["http://127.0.0.1/cb"], now=now)
            live = seed.live_session_ids(self.sessions)
            rows = (LoginSession.select(LoginSession.id, LoginSession.public_id,
                                        LoginSession.user)
                    .where(LoginSession.id.in_([i + 1 for i in live[:BROWSERS]])))
            users = dict(User.select(User.id, User.public_id).tuples())
            bearers = [
                "Bearer " + tokens.encode_access(
                    ext.keys, issuer=ISSUER, user_id=users[row.user_id],
                    session_id=row.public_id, generation=0, now=int(now),
                    expires_at=int(now) + ext.policy.access_ttl, client_id=client_id)
                for row in rows]
            refreshing = live[len(live) // 2:]
            for chunk in range(0, len(refreshing), 500):
                LoginSession.update(client_id=client_id).where(LoginSession.id.in_(
                    [i + 1 for i in refreshing[chunk:chunk + 500]])).execute()
        reply = server.request("GET", "/api/me", headers={"Authorization": bearers[0]})
        if reply.status != 200:
            raise RuntimeError(f"bearer /api/me answered {reply.status}: {reply.body[:300]!r}")
        bodies = [urlencode({"grant_type": "refresh_token", "refresh_token": seed.handle(i),
                             "client_id": client_id}) for i in refreshing]
        api = self.wrk(server, "an app's `GET /api/me` (bearer token + liveness check)",
                       "/api/me", bearers, "bearer", target=self.targets["page"])
        refresh = self.wrk(server, "an app's refresh (`POST /oauth/token`, own session each)",
                           "/oauth/token", bodies, "postonce")
        with self.app.app_context(), database.connection_context():
            rotated = LoginSession.select().where(LoginSession.client_id == client_id,
                                                  LoginSession.generation > 0).count()
        served = refresh.result["requests"]
        refresh.note = f"{rotated} app sessions rotated for {served} responses"
        if not served <= rotated <= served + self.args.connections:
            self.fail(f"refresh: {refresh.note}")
        return [api, refresh]

    # --- wrk -------------------------------------------------------------------------------

    def wrk(self, server: Server, scenario: str, path: str, lines: list[str], mode: str, *,
            cookie: str = "", target: str = "") -> Figure:
        """Measure the yardstick, then this phase."""
        yardstick = self.drive(self.yardstick, "bare Flask route", "/", [""], "get")
        self.bare_runs.append(yardstick)
        figure = self.drive(server, scenario, path, lines, mode, cookie=cookie, target=target)
        figure.bare_rps = yardstick.rps
        return figure

    def warm(self, server: Server, browsers: list[str]) -> None:
        """A browser's first request to a worker looks its session up; later ones use what that
        worker remembers. The phases measure that steady state: first WARM_UP seconds of the
        same requests, unmeasured (each browser several times, so both workers see it)."""
        self.drive(server, "warm-up", "/bench/page", browsers, "get",
                   duration=min(WARM_UP, self.args.duration))

    def drive(self, server: Server, scenario: str, path: str, lines: list[str], mode: str, *,
              cookie: str = "", target: str = "", duration: int = 0) -> Figure:
        duration = duration or self.args.duration
        feed = self.workdir / "lines.txt"
        feed.write_text("\n".join(lines) + "\n")
        command = ["wrk", "--threads", str(self.args.threads),
                   "--connections", str(self.args.connections),
                   "--duration", f"{duration}s", "--timeout", "10s",
                   "--script", str(LUA), server.url, "--", str(feed), mode,
                   str(self.args.threads), path, cookie]
        output = subprocess.run(command, capture_output=True, text=True, check=True,
                                timeout=duration + 60).stdout
        result = json.loads(re.search(r"^BENCH (.*)$", output, re.M).group(1))
        if result["socket_errors"] or result["status_errors"]:
            self.fail(f"{scenario}: {result['socket_errors']} socket errors, "
                      f"{result['status_errors']} error statuses")
        if result["exhausted"]:
            self.fail(f"{scenario}: ran out of sessions; use more --sessions or less --duration")
        rps = result["requests"] / (result["duration_us"] / 1e6)
        return Figure(scenario, rps, result["p50_us"] / 1000, result["p99_us"] / 1000,
                      target=target, result=result)

    # --- fixtures and checks ---------------------------------------------------------------

    def browsers(self, flask_cookie: str) -> list[str]:
        """Cookie headers of signed-in browsers: fresh access tokens for seeded sessions."""
        with self.app.app_context(), database.connection_context():
            ext, now = settings.current(), time.time()
            live = seed.live_session_ids(self.sessions)[:BROWSERS]
            rows = (LoginSession.select(LoginSession.id, LoginSession.public_id,
                                        LoginSession.user)
                    .where(LoginSession.id.in_([i + 1 for i in live])).order_by(LoginSession.id))
            users = dict(User.select(User.id, User.public_id).tuples())
            return [
                f"{ACCESS_COOKIE}="
                + tokens.encode_access(ext.keys, issuer=ISSUER, user_id=users[row.user_id],
                                       session_id=row.public_id, generation=0,
                                       now=int(now),
                                       expires_at=int(now) + ext.policy.access_ttl)
                + f"; {SESSION_COOKIE}={seed.handle(row.id - 1)}; {flask_cookie}"
                for row in rows]

    def form_token(self, server: Server) -> tuple[str, str]:
        """A browser's Flask session cookie and the CSRF token of the sign-in form."""
        reply = server.request("GET", "/login")
        cookie = next(f"{k}={v}" for k, v in reply.cookies.items() if k == "__Host-flask")
        token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', reply.body)
        return cookie, token.group(1).decode()

    def expect(self, server: Server, path: str, cookie: str, status: int,
               body: bytes = b"") -> None:
        reply = server.request("GET", path, headers={"Cookie": cookie})
        if reply.status != status or body not in reply.body:
            raise RuntimeError(f"GET {path} answered {reply.status}, not {status}: "
                               f"{reply.body[:300]!r}")

    def check_rotations(self, figure: Figure) -> None:
        """Every rotated session has exactly one successor, and nothing looked like reuse.

        Only this phase rotates (the others present valid access tokens), so every session
        past generation 0 is one of its rotations."""
        time.sleep(1)  # let the requests wrk abandoned at the end of the phase finish
        with self.app.app_context(), database.connection_context(), database.atomic():
            touched = LoginSession.select().where(LoginSession.generation > 0)
            rotated = touched.count()
            wrong = touched.where(LoginSession.generation != 1).count()
            tokens_made = RefreshToken.select().where(RefreshToken.generation > 0).count()
            reuse = SecurityEvent.select().where(SecurityEvent.kind == "reuse_detected").count()
        served = figure.result["requests"] + 1  # + the request that checked the first one
        figure.note = (f"{rotated} sessions rotated for {served} responses; {wrong} with more "
                       f"than one successor; {tokens_made - rotated} extra tokens; "
                       f"{reuse} reuse events")
        if wrong or reuse or tokens_made != rotated or not \
                served <= rotated <= served + self.args.connections:
            self.fail(f"rotation: {figure.note}")

    def count_sign_ins(self) -> int:
        with self.app.app_context(), database.connection_context():
            return SecurityEvent.select().where(SecurityEvent.kind == "sign_in").count()

    def fail(self, message: str) -> None:
        self.correct = False
        self.notes.append(f"**FAILED**: {message}")


def worker_peak_rss_mb(server: Server) -> float:
    """The highest peak resident set (VmHWM) among the server's worker processes."""
    peaks = []
    for worker in psutil.Process(server.process.pid).children():
        status = Path(f"/proc/{worker.pid}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024)
    return max(peaks)


def render(figures: list[Figure], bench: Bench) -> str:
    args = bench.args
    lines = [
        f"Gatehouse benchmark: {bench.engine}, {args.users:,} users, {args.sessions:,} sessions; "
        f"gunicorn {WORKERS} sync workers; wrk {args.threads} threads, {args.connections} "
        f"connections, {args.duration} s per phase, 127.0.0.1; {os.cpu_count()} CPUs.",
        "",
        "| scenario | requests/s | p50 ms | p99 ms | × bare Flask | target | notes |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for f in figures:
        if f.rps is None:
            lines.append(f"| {f.scenario} | – | – | – | – | {f.target} | {f.note} |")
            continue
        ratio = f.rps / f.bare_rps
        lines.append(f"| {f.scenario} | {f.rps:,.0f} | {f.p50_ms:.2f} | {f.p99_ms:.2f} | "
                     f"{ratio:.2f} | {verdict(f, ratio, figures)} | {f.note} |")
    rss = bench.peak_rss_mb
    lines += ["", f"Worker peak RSS (VmHWM, highest Gatehouse worker): {rss:.1f} MB "
              f"(target < 80 MB: {'met' if rss < 80 else 'missed'})", ""]
    lines += [f"- {note}" for note in bench.notes]
    return "\n".join(lines)


def verdict(figure: Figure, ratio: float, figures: list[Figure]) -> str:
    if figure.target.startswith("≥"):
        wanted = float(figure.target.split()[1].rstrip("×"))
        return f"{figure.target}: {'met' if ratio >= wanted else 'missed'}"
    if figure.target.startswith("within"):
        base = next(f for f in figures if f.scenario.startswith("authenticated page"))
        change = ratio / (base.rps / base.bare_rps) - 1  # ratios: the load may have drifted
        return f"{figure.target}: {change:+.0%}, {'met' if abs(change) <= 0.10 else 'missed'}"
    return figure.target
