"""Every command the README shows, run as written, in a fresh copy of the project.

The quick start once served 8 requests and then only 503s, behind hundreds of green tests,
because no test ran it the way the README tells people to. Here the commands are read out of
README.md (the way ``.ci/run`` reads the test command), so editing the README changes what is
tested. Each command is given its own fresh shell, after the quick start, as a newcomer would.
The only change made to a command is its port, so that a busy port 5000 or 8000 on a shared
machine cannot fail the run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from mail_server import LINK, SmtpServer
from polling import eventually
from servers import ROOT, Server, free_port, request, server_env
from support import PASSWORD, is_postgres
from visitors import Visitor, drive_sequentially, flow_figures, sign_up_and_out

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
INSTALL_TIMEOUT = 600  # a fresh virtual environment installs from the package index
PARALLEL_CLIENTS = 20
SEQUENTIAL_REQUESTS = 1_000


def readme_commands() -> list[str]:
    """The body of every ```sh block in the README, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", README.read_text(), flags=re.S | re.M)


def command_kind(block: str) -> str | None:
    """Which test runs this block; None for a block no test knows (a failure below)."""
    if block.lstrip().startswith("site=") and "curl " in block:
        return "curl"
    if "flask --app wsgi run" in block:
        return "serve"
    if "-m pytest" in block:
        return "test"
    if "gunicorn" in block:
        return "gunicorn"
    if "flask --app wsgi" in block:
        return "cli-production" if "SECRET_KEY=" in block else "cli"
    if "-m bench" in block:
        return "bench"
    return None


def the_block(kind: str) -> str:
    (block,) = [b for b in readme_commands() if command_kind(b) == kind]
    return block


def test_every_readme_command_is_run_by_a_test():
    kinds = [command_kind(block) for block in readme_commands()]
    assert None not in kinds, f"a README command no test runs: {readme_commands()}"
    assert sorted(kinds) == ["bench", "cli", "cli-production", "curl", "gunicorn", "serve",
                             "test"]


def test_ci_runs_the_readme_test_command():
    """`.ci/run` reads the test command out of README.md; it must find the one shown."""
    ci = (ROOT / ".ci" / "run").read_text()
    pattern = re.search(r"sed -n '(s/.*/p)'", ci).group(1)
    found = subprocess.run(["sed", "-n", pattern, str(README)], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert found[:1] == [the_block("test").strip()]


# --- a fresh copy of the project, with the quick start run in it --------------------------

def fresh_environment() -> dict[str, str]:
    """This machine's environment without anything the test run or a developer set for the
    app, so a command gets only what its own line carries; on the PostgreSQL pass the
    database is the one under test."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GATEHOUSE_", "FLASK_", "VIRTUAL_ENV", "PYTHON"))
           and k not in ("DATABASE_URL", "SECRET_KEY", "TEST_DATABASE_URL")}
    if is_postgres(os.environ.get("TEST_DATABASE_URL", "")):
        env["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
    return env


def copy_project(target: Path) -> Path:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def with_port(block: str, port: int) -> str:
    return re.sub(r"(--port |127\.0\.0\.1:)(5000|8000)\b", rf"\g<1>{port}", block)


class Shell:
    """One README block running in its own shell, in its own process group."""

    def __init__(self, block: str, cwd: Path, log: Path) -> None:
        self.log = log.open("wb")
        self.process = subprocess.Popen(["bash", "-c", block], cwd=cwd, env=fresh_environment(),
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.log_path = log

    def wait_for(self, port: int, timeout: float) -> None:
        def answers() -> bool:
            assert self.process.poll() is None, f"it exited: {self.output()}"
            try:
                return request(port, "GET", "/healthz", timeout=2).status == 200
            except OSError:
                return False

        try:
            eventually(answers, within=timeout, every=0.25, what=f"an answer on port {port}")
        except AssertionError as failure:
            pytest.fail(f"{failure}: {self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log.close()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A fresh copy of the project in which the README's serve command has been run (so its
    .venv exists), serving at ``project.port`` until the module's tests are done."""
    root = copy_project(tmp_path_factory.mktemp("fresh-clone"))
    port = free_port()
    shell = Shell(with_port(the_block("serve"), port), root, root / "serve.log")
    try:
        shell.wait_for(port, INSTALL_TIMEOUT)
        yield Project(root, port, shell)
    finally:
        shell.stop()
        _drop_tables()


class Project:
    def __init__(self, root: Path, port: int, shell: Shell) -> None:
        self.root, self.port, self.shell = root, port, shell

    def run(self, line: str, *, stdin: str = "", timeout: float = 120):
        return subprocess.run(["bash", "-c", line], cwd=self.root, env=fresh_environment(),
                              input=stdin, capture_output=True, text=True, timeout=timeout)


def _drop_tables() -> None:
    """The PostgreSQL pass shares one database: leave it empty for the tests after these."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if is_postgres(url):
        import psycopg2

        with psycopg2.connect(url) as conn, conn.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        conn.close()


def record(name: str, figures: dict) -> None:
    """Keep what a load run saw, per engine, for the closing note; nothing here is asserted."""
    engine = "postgresql" if is_postgres(os.environ.get("TEST_DATABASE_URL", "")) else "sqlite"
    out = ROOT / "test-artifacts" / f"quickstart-figures-{engine}.json"
    out.parent.mkdir(exist_ok=True)
    saved = json.loads(out.read_text()) if out.exists() else {}
    saved[name] = figures
    out.write_text(json.dumps(saved, indent=2, sort_keys=True))


def assert_keeps_serving(port: int, name: str,
                         confirm: Callable[[str], str] | None = None) -> None:
    """1,000 sequential requests of a signed-in person, then 20 people at once registering
    (confirming their address through the mailed link, when ``confirm`` finds it), signing
    in, opening their account and sessions and signing out: every one answered."""
    # Fresh addresses per run: the served project keeps one database across these tests, and
    # a taken address is answered (rightly) with a mail to its owner instead of a link.
    run = secrets.token_hex(3)
    person = Visitor(port, "127.0.0.2")
    sign_up_and_out(person, f"steady-{run}@example.com", PASSWORD, sign_out=False,
                    confirm=confirm)
    sequential = drive_sequentially(person, SEQUENTIAL_REQUESTS, within=120)
    assert sequential == SEQUENTIAL_REQUESTS, flow_figures([person])
    crowd = [Visitor(port, f"127.0.0.{10 + i}") for i in range(PARALLEL_CLIENTS)]
    with ThreadPoolExecutor(PARALLEL_CLIENTS) as pool:
        list(pool.map(lambda v: sign_up_and_out(v, f"person{v.source}-{run}@example.com",
                                                PASSWORD, confirm=confirm), crowd))
    figures = flow_figures([person, *crowd])
    record(name, figures)
    assert figures["statuses"].get("503", 0) == 0, figures
    assert figures["unexpected"] == [], figures
    assert figures["requests"] >= SEQUENTIAL_REQUESTS + PARALLEL_CLIENTS * 7


def outbox_link(outbox: Path, email: str, timeout: float = 30) -> str:
    """The link in the development mail to ``email``, read from the served project's
    ``instance/outbox/`` as the README tells a newcomer to (the server writes it after the
    response, so it is waited for, within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for eml in outbox.glob("*.eml"):
            message = message_from_bytes(eml.read_bytes(), policy=policy.default)
            if message["To"] == email:
                return LINK.search(message.get_body(("plain",)).get_content()).group(0)
        time.sleep(0.1)
    pytest.fail(f"no mail to {email} in {outbox}")


def test_quick_start_keeps_serving(project):
    outbox = project.root / "instance" / "outbox"
    assert_keeps_serving(project.port, "flask run (README quick start)",
                         confirm=lambda email: outbox_link(outbox, email))


def test_quick_start_says_where_the_link_is(project):
    """The page after registering tells a newcomer without a mail server where to look."""
    person = Visitor(project.port, "127.0.0.3")
    reply = person.submit("/register", {"email": "newcomer@example.com", "password": PASSWORD},
                          expect=200)
    assert b"instance/outbox/" in reply.body
    assert outbox_link(project.root / "instance" / "outbox", "newcomer@example.com")


def test_readme_gunicorn_command_keeps_serving(project):
    """The production command, with the mail server it names replaced by one in this test."""
    port, smtp = free_port(), SmtpServer(free_port()).start()
    block = with_port(the_block("gunicorn"), port).replace("127.0.0.1:1025",
                                                           f"127.0.0.1:{smtp.port}")
    shell = Shell(block, project.root, project.root / "gunicorn.log")
    try:
        shell.wait_for(port, 60)
        assert_keeps_serving(
            port, "gunicorn (README production command)",
            confirm=lambda email: smtp.mailbox.wait_for(email)[0].link("/email/verify#"))
    finally:
        shell.stop()
        smtp.stop()


def test_gunicorn_sync_workers_keep_serving(database_url):
    """The default worker class, which the README does not show, holds up the same way."""
    env = server_env(database_url, "s" * 8 + "ync-workers-secret-0123456789abcdef")
    with Server(env, workers=2, threads=1) as server:
        assert_keeps_serving(server.port, "gunicorn sync workers")


def test_readme_cli_commands(project):
    """Each operator line, copied alone into a fresh shell after the quick start: the
    development ones, then the production ones beside the gunicorn command (its key, and a
    mail server in this test in place of the one they name), on the same database."""
    lines = [line for line in the_block("cli").splitlines() if line.strip()]
    create = next(line for line in lines if " create-user " in line)
    created = project.run(create, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "Created" in created.stdout
    again = project.run(create, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert again.returncode != 0 and "Traceback" not in again.stderr
    for line in lines:
        if line is not create:
            done = project.run(line)
            assert done.returncode == 0, done.stdout + done.stderr
            assert "Traceback" not in done.stderr

    key = the_block("gunicorn").splitlines()[0]
    assert "instance/secret-key" in key and project.run(key).returncode == 0
    smtp = SmtpServer(free_port()).start()
    try:
        production = [line.replace("127.0.0.1:1025", f"127.0.0.1:{smtp.port}")
                      for line in the_block("cli-production").splitlines() if line.strip()]
        commands = [line.split(" wsgi ")[1].split()[0] for line in production]
        assert commands[:4] == ["create-user", "prune", "send-mail", "migrate"]
        assert set(commands[4:]) == {"keys", "clients", "users", "sessions"}
        # The account the development line made is there: production refuses a second one.
        taken = project.run(production[0], stdin=f"{PASSWORD}\n{PASSWORD}\n")
        assert taken.returncode == 1 and "already has an account" in taken.stderr, taken
        ran = [project.run(line) for line in production[1:]]
        for done in ran:
            assert done.returncode == 0, done.stdout + done.stderr
            assert "Traceback" not in done.stderr
        pruned, sent = ran[0], ran[1]
        assert pruned.stdout.startswith("Pruned ") and sent.stdout.startswith("Sent ")
    finally:
        smtp.stop()


def test_the_readme_secret_key_is_readable_by_its_owner_only(tmp_path):
    """The production command's first line, under the usual umask 022: it was made 0644."""
    key, made, kept = the_block("gunicorn").splitlines()[0], tmp_path / "instance/secret-key", []
    for _ in range(2):  # the second run keeps the key it finds
        done = subprocess.run(["bash", "-c", key], cwd=tmp_path, env=fresh_environment(),
                              umask=0o022, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert stat.S_IMODE(made.stat().st_mode) == 0o600
        kept.append(made.read_text())
    assert len(kept[0].strip()) >= 64 and kept[0] == kept[1]


def test_the_readme_curl_recipe_signs_in_and_out(project):
    """The JSON API from a shell over plain http, as written: the cookies read out of
    ``Set-Cookie`` and sent back by hand, which works whatever curl's cookie jar does."""
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed")
    create = next(line for line in the_block("cli").splitlines() if " create-user " in line)
    made = project.run(create, stdin=f"{PASSWORD}\n{PASSWORD}\n")  # or ada is there already
    assert made.returncode == 0 or "already has an account" in made.stderr, made
    done = project.run(with_port(the_block("curl"), project.port), stdin=f"{PASSWORD}\n")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    me = json.loads(lines[0])
    assert me["email"] == "ada@example.com"
    sessions = json.loads(lines[1])["sessions"]
    assert [s["id"] for s in sessions if s["current"]] == [me["session_id"]]
    assert lines[2] == "204"
    assert json.loads(lines[3])["error"] == "not_authenticated"


def test_every_python_command_the_readme_names_runs_the_projects_python():
    """A newcomer copies ``python -m bench...`` as shown: it must be the virtual
    environment's interpreter, which has the project and its extras installed."""
    text = README.read_text()
    bare = [m.group(0) for m in re.finditer(r"(?<!/)\bpython3?\s+-m\s+(?!venv\b)[\w.]+", text)]
    assert bare == [], bare


def test_every_operator_command_and_option_is_documented(app):
    """Each ``flask --app wsgi`` command of the app is shown in both operator blocks, named in
    the module table's row of the module that defines it (and no other row), and each of its
    options is documented."""
    text = README.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `app/")]
    for name, command in app.cli.commands.items():
        if name in ("run", "shell", "routes"):
            continue
        for kind in ("cli", "cli-production"):
            assert f"flask --app wsgi {name}" in the_block(kind), (name, kind)
        # A group (``keys list``, ``keys rotate``) is documented through its subcommands.
        leaves = list(getattr(command, "commands", {}).values()) or [command]
        module = leaves[0].callback.__module__.split(".")
        path = "/".join(module) + ("/" if (ROOT.joinpath(*module)).is_dir() else ".py")
        naming = [row for row in rows if f"`flask --app wsgi {name}`" in row
                  or f"`{name}`" in row or f"`{name} " in row or f"wsgi {name} " in row]
        assert len(naming) == 1 and f"`{path}`" in naming[0], (name, path, naming)
        for option in (p for leaf in leaves for p in leaf.params
                       if p.param_type_name == "option"):
            for flag in option.opts:
                assert f"`{flag} " in text or f"`{flag}`" in text, (name, flag)
def test_cli_error_is_one_line_without_a_traceback(project):
    """A CLI line missing what production needs says so in one line and exits 1."""
    create = next(line for line in the_block("cli").splitlines() if "prune" in line)
    done = project.run(create.replace("GATEHOUSE_ENV=development ", ""))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "SECRET_KEY" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_readme_bench_command(project):
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed (apt-get install wrk; .ci/run installs it)")
    if is_postgres(os.environ.get("TEST_DATABASE_URL", "")):
        pytest.skip("the README's benchmark line runs on SQLite; the SQLite pass runs it")
    done = project.run(the_block("bench"), timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| authenticated page (valid access cookie + liveness check) |" in done.stdout
    assert "FAILED" not in done.stdout
