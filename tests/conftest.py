"""Shared fixtures: one storage suite over SQLite and a throwaway PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunebook.testing import PostgresServer, pg_bindir

# pytest imports readline (capture.py's workaround), and GNU readline's initialisation exports COLUMNS=80 and
# LINES into the C environment: every command a test starts would then wrap its output at 80 columns as if on
# a terminal, and pytest-xdist's workers start with them in os.environ. Tests that want a width ask for it.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)  # the mapping (a worker inherited it), and unsetenv
    os.unsetenv(_name)  # the C environment, where readline put it in this process

ROOT = Path(__file__).resolve().parent.parent
TUNEBOOK = [sys.executable, "-m", "tunebook"]


@pytest.fixture(scope="session")
def pg_server():
    bindir = pg_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL binaries are missing in CI: .ci/run should have installed them")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
    server = PostgresServer(bindir)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, tmp_path) -> str:
    """Every storage test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tunebook.db'}"
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tunebook.db'}"


def run_cli(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None, timeout: float = 300):
    """Run the real `tunebook` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*TUNEBOOK, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
