"""Issue 22 item 6: a malformed PostgreSQL port is one clear error on the Python API, as on the CLI.

Before, ``open_storage`` and ``tb.create_study`` raised SQLAlchemy's raw ``ValueError`` ("invalid literal
for int() with base 10: 'notaport'"); now a :class:`SpecError` naming the field (``storage``), the port and
the fix, raised before anything connects. The URL's password is never repeated.
"""

from __future__ import annotations

import pytest

import tunebook as tb
from conftest import run_cli
from tunebook.errors import SpecError
from tunebook.storage import normalize_url, open_storage

BAD_PORTS = [
    ("postgresql://u@127.0.0.1:notaport/db", "the port 'notaport' in the URL is not a number"),
    ("postgres://u:secret@db.example:54x32/tunebook", "the port '54x32' in the URL is not a number"),
    ("postgresql://u:secret@h:/db", "the port '' in the URL is not a number"),
    ("postgresql://u@[::1]:x5/db", "the port 'x5' in the URL is not a number"),
    ("postgresql://u@127.0.0.1:99999/db", "the port 99999 in the URL is out of range"),
    ("postgresql://u@127.0.0.1:0/db", "the port 0 in the URL is out of range"),
    ("postgresql+psycopg://u@h:-1/db", "the port -1 in the URL is out of range"),
]


@pytest.mark.parametrize(("url", "problem"), BAD_PORTS, ids=[u for u, _ in BAD_PORTS])
def test_open_storage_names_the_port(url, problem):
    with pytest.raises(SpecError) as caught:
        open_storage(url)
    assert caught.value.field == "storage"
    assert caught.value.problem == problem
    assert "give a port from 1 to 65535" in caught.value.fix
    assert "secret" not in str(caught.value)


def test_create_study_names_the_port(tmp_path, monkeypatch):
    space = {"nuisance": {"lr": {"min": 0.1, "max": 1.0}}}
    with pytest.raises(SpecError, match=r"^storage: the port 'notaport' in the URL is not a number; give a port"):
        tb.create_study("s", space=space, objective=("loss", "min"), trials=2, max_train_steps=3,
                        storage="postgresql://u@127.0.0.1:notaport/db")
    monkeypatch.setenv("TUNEBOOK_STORAGE", "postgresql://u@127.0.0.1:notaport/db")
    with pytest.raises(SpecError, match="the port 'notaport'"):
        tb.create_study("s", space=space, objective=("loss", "min"), trials=2, max_train_steps=3)


def test_an_unparseable_host_is_one_line():
    with pytest.raises(SpecError, match=r"^storage: cannot parse the URL's host and port; use sqlite"):
        normalize_url("postgresql://u@[::1/db")


def test_good_ports_still_parse():
    assert normalize_url("postgresql://u@127.0.0.1:5432/db") == "postgresql+psycopg://u@127.0.0.1:5432/db"
    assert normalize_url("postgresql://u@[::1]:65535/db") == "postgresql+psycopg://u@[::1]:65535/db"
    assert normalize_url("postgresql://u@localhost/db") == "postgresql+psycopg://u@localhost/db"


@pytest.mark.parametrize("argv", [["run", "spec.yaml", "--create-only"], ["status"], ["worker"]])
def test_the_cli_says_one_line_and_exits_2(tmp_path, argv):
    (tmp_path / "spec.yaml").write_text(
        "study: s\nobjective: {metric: loss, mode: min}\ntrials: 2\nmax_train_steps: 3\n"
        "search_space: {nuisance: {lr: {min: 0.1, max: 1.0}}}\n")
    result = run_cli(*argv, "--storage", "postgresql://u:secret@127.0.0.1:notaport/db", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "the port 'notaport'" in result.stderr and "secret" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


@pytest.mark.parametrize("url", ["sqlite:/tmp/x.db", "sqlite:x.db", "postgresql:u:secret@h/db", "postgresql+psycopg:h/db"])
def test_a_scheme_without_its_slashes_is_refused_not_read_as_a_path(tmp_path, url):
    """Before: 'sqlite:/tmp/x.db' was a relative path, and the advice was to create a folder named 'sqlite:'."""
    with pytest.raises(SpecError, match="malformed storage URL: '[a-z+]+:' must be followed by '//'") as caught:
        normalize_url(url)
    assert "secret" not in str(caught.value)
    proc = run_cli("status", "anything", "--storage", url, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "must be followed by '//'" in proc.stderr and not list(tmp_path.iterdir())  # nothing created
