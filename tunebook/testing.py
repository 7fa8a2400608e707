"""Helpers for testing and benchmarking with real services.

:class:`PostgresServer` starts a throwaway PostgreSQL server (``initdb`` and
``pg_ctl`` in a temporary folder, listening on 127.0.0.1 only), as the test
suite and the benchmarks do. As root it runs the server as the ``postgres``
user (``initdb`` refuses root).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A PostgreSQL server in a temp folder, listening on 127.0.0.1 only."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="tunebook-pg-"))
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:  # initdb refuses to run as root
            try:
                self.user = pwd.getpwnam("postgres").pw_name
            except KeyError:
                self.user = "nobody"
            os.chmod(self.dir, 0o777)
        self.data = self.dir / "data"
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._start()
        self._counter = itertools.count()

    def _start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60", "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            "start",
        )

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / tool), *args], check=True, capture_output=True, user=self.user, cwd=self.dir, timeout=120
        )

    def new_database(self) -> str:
        import psycopg

        name = f"tb_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def restart(self, down_for: float = 0.0) -> None:
        """``pg_ctl restart`` (fast shutdown: open connections are cut), waiting until it accepts again;
        with ``down_for``, a stop, that many seconds down, and a start (a longer outage)."""
        if not down_for:
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60", "-m", "fast",
                      "restart")
            return
        import time

        self.down()
        time.sleep(down_for)
        self.up()

    def down(self) -> None:
        """Stop the server (fast shutdown: open connections are cut); returns once it is down."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", "fast", "stop")

    def up(self) -> None:
        """Start the stopped server again; returns once it accepts connections."""
        self._start()

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
