"""Issue 22 item 6: a verb that only reads never creates a store, on PostgreSQL as on SQLite.

Each verb runs against a real throwaway PostgreSQL server (and a SQLite file) whose database holds no
tunebook tables: one line, exit 2, and afterwards the database holds exactly the tables it held before
(none: no CREATE TABLE, no ``tb_meta`` row). A database holding a tunebook store still answers.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

import tunebook as tb
from conftest import run_cli
from tunebook.cli import main

#: the read-only verbs, with the arguments each needs (STUDY: a study name)
READ_ONLY = [
    ["status"], ["status", "keep"], ["ls"], ["report", "keep"], ["report", "keep", "--format", "terminal"],
    ["export", "keep", "--to", "csv", "out.csv"], ["next", "keep"], ["prune", "keep"], ["retrain", "keep"],
    ["compare", "keep", "other"], ["stability", "keep"], ["study-variance", "keep"], ["adopt", "keep"],
]


def pg_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tunebook: error: "), err
    return err[0]


@pytest.mark.parametrize("argv", READ_ONLY, ids=lambda a: "-".join(a[:2]))
def test_a_read_only_verb_on_an_empty_postgresql_database_writes_nothing(pg_server, tmp_path, monkeypatch, capsys, argv):
    url = pg_server.new_database()
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--storage", url]) == 2
    line = one_error_line(capsys)
    assert "--storage: no store in database" in line and "holds no tables" in line, line
    assert url.rpartition("/")[2] in line  # names the database
    assert pg_tables(url) == set()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["status"], ["dashboard", "--port", "0"]], ids=["status", "dashboard"])
def test_through_the_real_command_and_the_environment(pg_server, tmp_path, argv):
    """In a subprocess: a dashboard that wrongly opened the store would serve until the timeout (a failure)."""
    url = pg_server.new_database()
    result = run_cli(*argv, cwd=tmp_path, env={"TUNEBOOK_STORAGE": url}, timeout=180)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "--storage: no store in database" in result.stderr
    assert pg_tables(url) == set()


def test_another_tools_postgresql_database_is_left_as_it_was(pg_server, capsys):
    url = pg_server.new_database()
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE studies (id INTEGER)")
    assert main(["ls", "--storage", url]) == 2
    assert "is not a tunebook store (it holds other tables)" in one_error_line(capsys)
    assert pg_tables(url) == {"studies"}


def test_a_postgresql_store_is_read(pg_server, capsys):
    url = pg_server.new_database()
    tb.create_study("keep", space={"nuisance": {"lr": {"min": 0.1, "max": 1.0}}}, objective=("loss", "min"),
                    trials=2, max_train_steps=3, storage=url)
    before = pg_tables(url)
    assert "tb_studies" in before
    assert main(["status", "keep", "--storage", url]) == 0
    assert "keep" in capsys.readouterr().out
    assert pg_tables(url) == before


def test_an_empty_sqlite_file_stays_empty(tmp_path, monkeypatch, capsys):
    """The same on SQLite: an existing file that holds no tables (``touch tunebook.db``) is not made a store."""
    path = tmp_path / "tunebook.db"
    path.touch()
    monkeypatch.chdir(tmp_path)
    assert main(["status", "--storage", f"sqlite:///{path}"]) == 2
    assert "holds no tables" in one_error_line(capsys)
    assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tunebook.db"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


def test_a_down_server_is_one_line_too(pg_server, capsys):
    """A server that does not answer: no probe result, and opening the store says so in one line."""
    url = pg_server.new_database().rpartition(":")[0] + ":1/nowhere"
    assert main(["status", "--storage", url]) == 2
    line = one_error_line(capsys)
    assert "cannot open" in line and "nowhere" in line, line
