"""Dumps of stores (a folder of SQLite files, or one store's tables by URL), to show that a refused command
changed nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable

import sqlalchemy as sa


def dump(folder: Path) -> tuple:
    """Everything a command could have changed: each SQLite file's content and the folder's file names."""
    names = sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm", "-journal")))
    stores = []
    for p in sorted(folder.glob("*.db")):
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        stores.append((p.name, list(conn.iterdump())))
        conn.close()
    return names, stores


def rows(url: str, tables: Iterable[str] | None = None) -> dict[str, list]:
    """Every row of each of ``tables`` (default: every table the store has) of the store at ``url`` (SQLite or
    PostgreSQL), in a fixed order; ``{}`` for a SQLite file that does not exist (reading it would create it)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return {}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = list(tables) if tables is not None else sa.inspect(conn).get_table_names()
            return {t: conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1")).all() for t in names}
    finally:
        engine.dispose()
