"""``python -m bench.inprocess --callgrind`` gives a figure that repeats: its child runs with a
fixed hash seed, and it says what the figure depends on. valgrind itself is not run here (the
figures belong to the benchmark, not to the test suite): its run is replaced by one that
records how it was asked and writes the dumps callgrind would."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import inprocess


@pytest.fixture
def valgrind(monkeypatch):
    """The child's environment, as valgrind would have been given it."""
    seen: list[dict[str, str]] = []

    def run(command, *, env, **kwargs):
        seen.append(env)
        out = Path(next(a for a in command if a.startswith("--callgrind-out-file="))
                   .split("=", 1)[1])
        for n in range(1, 2 * len(inprocess.CALLGRIND_CASES) + 1):
            (out.parent / f"{out.name}.{n}").write_text(f"totals: {n * 1000}\n")

    monkeypatch.setattr(inprocess.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(inprocess.subprocess, "run", run)
    return seen


def test_the_child_runs_with_a_fixed_hash_seed(valgrind, monkeypatch, capsys):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    inprocess.callgrind()
    assert [env["PYTHONHASHSEED"] for env in valgrind] == ["0"]
    out = capsys.readouterr().out
    first, *rows = out.splitlines()
    assert first.startswith("PYTHONHASHSEED=0, CPython 3.") and first.endswith(", SQLite")
    assert rows[1].split() == ["authenticated", "page", "20", "instructions"]  # dump 4 / 200


def test_a_seed_the_caller_chose_is_kept(valgrind, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/x")
    inprocess.callgrind()
    assert [env["PYTHONHASHSEED"] for env in valgrind] == ["7"]
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("PYTHONHASHSEED=7, ") and first.endswith(", PostgreSQL")
