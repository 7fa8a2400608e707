"""Storage: one contract (:mod:`.base`), one SQL implementation (:mod:`.sql`).

URLs: ``sqlite:///path/to/tunebook.db`` (the default is ``./tunebook.db``) or
``postgresql://user:password@host:port/database`` (needs ``tunebook[postgres]``).
A bare path ending in ``.db``/``.sqlite``/``.sqlite3`` means a SQLite file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tunebook.errors import MissingExtraError, SpecError
from tunebook.storage.base import Storage

DEFAULT_STORAGE = "sqlite:///tunebook.db"
_FIX = "use sqlite:///path/to/file.db or postgresql://user:password@host:port/dbname"

_opened: dict[tuple[int, str], Storage] = {}
_lock = threading.Lock()


def normalize_url(url: str | os.PathLike[str] | None) -> str:
    """Check a storage URL and return the SQLAlchemy form of it."""
    if url is None or url == "":
        url = os.environ.get("TUNEBOOK_STORAGE") or DEFAULT_STORAGE
    if not isinstance(url, (str, os.PathLike)):
        raise SpecError("storage", f"expected a URL, got {type(url).__name__}", _FIX)
    url = os.fspath(url)
    if "://" not in url:
        if url.endswith((".db", ".sqlite", ".sqlite3")):
            return f"sqlite:///{Path(url).resolve()}"
        raise SpecError("storage", f"not a storage URL: {url!r}", _FIX)
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if rest in ("", "/") or ":memory:" in rest:
            raise SpecError(
                "storage",
                "an in-memory SQLite store cannot be shared by worker processes",
                "give a file, e.g. sqlite:///tunebook.db",
            )
        path = Path(rest[1:]) if rest.startswith("/") else Path(rest)
        if not path.parent.exists():
            raise SpecError("storage", f"folder {str(path.parent)!r} does not exist", "create it or pick another path")
        return f"sqlite:///{path.resolve()}"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        if not rest or rest.startswith("/") and len(rest) == 1:
            raise SpecError("storage", "a PostgreSQL URL needs a host and a database", _FIX)
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise MissingExtraError("psycopg", "postgres", "PostgreSQL storage") from None
        return f"postgresql+psycopg://{rest}"
    raise SpecError("storage", f"unknown storage scheme {scheme!r}", _FIX)


def open_storage(url: str | os.PathLike[str] | None = None) -> Storage:
    """The storage at ``url``, opened once per process (and again in a child process)."""
    from tunebook.storage.sql import SQLStorage

    normalized = normalize_url(url)
    key = (os.getpid(), normalized)
    with _lock:
        storage = _opened.get(key)
        if storage is None:
            from tunebook import specio

            try:
                storage = SQLStorage(normalized)
            except SpecError:
                raise
            except Exception as exc:  # a server that is down, a bad password, ...
                raise specio.corruption_error(exc, normalized) or SpecError(
                    "storage", f"cannot open {redact(normalized)}: {exc}".splitlines()[0], _FIX) from exc
            # A damaged SQLite file met by a later read: one line suggesting `sqlite3 FILE .recover`.
            specio.watch_corruption([getattr(storage, "_reader", None), getattr(storage, "_writer", None)], normalized)
            _opened[key] = storage
        return storage


def redact(url: str) -> str:
    """The URL without its password, for messages and the notebook."""
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


__all__ = ["DEFAULT_STORAGE", "Storage", "normalize_url", "open_storage", "redact"]
