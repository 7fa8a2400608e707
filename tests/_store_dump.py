"""A dump of a folder of SQLite stores, to show that a refused command changed nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def dump(folder: Path) -> tuple:
    """Everything a command could have changed: each SQLite file's content and the folder's file names."""
    names = sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm", "-journal")))
    stores = []
    for p in sorted(folder.glob("*.db")):
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        stores.append((p.name, list(conn.iterdump())))
        conn.close()
    return names, stores
