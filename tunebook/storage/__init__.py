"""Storage: one contract (:mod:`.base`), backends registered by URL scheme (:func:`register_backend`).

Built in: the SQL backend (:mod:`.sql`) for ``sqlite:///path/to/tunebook.db`` (the default is
``./tunebook.db``) and ``postgresql://user:password@host:port/database`` (needs ``tunebook[postgres]``).
A bare path ending in ``.db``/``.sqlite``/``.sqlite3`` means a SQLite file. Where a store keeps
files on this machine is the backend's to say (:func:`local_files`, ``Storage.local_files``): no
other module parses a storage URL.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tunebook.errors import MissingExtraError, SpecError, failure_line
from tunebook.storage.base import Storage

DEFAULT_STORAGE = "sqlite:///tunebook.db"
_FIX = "use sqlite:///path/to/file.db or postgresql://user:password@host:port/dbname"

_opened: dict[tuple[int, str], Storage] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Backend:
    """A storage backend: the URL schemes it opens, the class that opens them (``module:Class``, a
    :class:`~tunebook.storage.base.Storage`, imported on first use) and the check that turns a
    URL of its schemes into the one form it opens (``normalize(scheme, rest)``; a
    :class:`SpecError` for a bad one)."""

    schemes: tuple[str, ...]
    opener: str
    normalize: Callable[[str, str], str]

    def storage_class(self) -> type[Storage]:
        module, _, name = self.opener.partition(":")
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


#: URL scheme -> its backend (:func:`register_backend`); the normalized URL's scheme is registered too.
BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Make ``backend`` open URLs of its schemes (a new backend is one module that calls this, plus its test)."""
    for scheme in backend.schemes:
        if scheme in BACKENDS and BACKENDS[scheme] != backend:
            raise ValueError(f"storage scheme {scheme!r} is already registered")
        BACKENDS[scheme] = backend
    return backend


def _sqlite_url(scheme: str, rest: str) -> str:
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


def _postgresql_url(scheme: str, rest: str) -> str:
    if not rest or rest.startswith("/") and len(rest) == 1:
        raise SpecError("storage", "a PostgreSQL URL needs a host and a database", _FIX)
    normalized = f"postgresql+psycopg://{rest}"
    _check_port(normalized, rest)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise MissingExtraError("psycopg", "postgres", "PostgreSQL storage") from None
    return normalized


def _check_port(url: str, rest: str) -> None:
    """A server URL whose port is a number from 1 to 65535 (checked before anything connects; the message
    never repeats the URL, which may hold a password)."""
    import sqlalchemy as sa

    fix = "give a port from 1 to 65535, e.g. postgresql://user:password@host:5432/dbname (or leave it out for 5432)"
    try:
        port = sa.engine.make_url(url).port
    except (ValueError, TypeError, sa.exc.ArgumentError):
        text = rest.partition("/")[0].rpartition("@")[2]
        text = text.rpartition("]")[2] if text.startswith("[") else text
        given = text.rpartition(":")[2]
        if ":" not in text or given.isdigit():
            raise SpecError("storage", "cannot parse the URL's host and port", _FIX) from None
        raise SpecError("storage", f"the port {given[:20]!r} in the URL is not a number", fix) from None
    if port is not None and not 0 < port < 65536:
        raise SpecError("storage", f"the port {port} in the URL is out of range", fix)


register_backend(Backend(("sqlite",), "tunebook.storage.sql:SQLStorage", _sqlite_url))
register_backend(Backend(("postgresql", "postgres", "postgresql+psycopg"), "tunebook.storage.sql:SQLStorage",
                         _postgresql_url))


def normalize_url(url: str | os.PathLike[str] | None) -> str:
    """Check a storage URL and return the form its backend opens."""
    if url is None or url == "":
        url = os.environ.get("TUNEBOOK_STORAGE") or DEFAULT_STORAGE
    if not isinstance(url, (str, os.PathLike)):
        raise SpecError("storage", f"expected a URL, got {type(url).__name__}", _FIX)
    url = os.fspath(url)
    if "://" not in url:
        scheme = url.partition(":")[0].lower()
        if ":" in url and (scheme in BACKENDS or "+" in scheme):  # sqlite:/x.db, postgresql:host/db
            raise SpecError("storage", f"malformed storage URL: '{scheme}:' must be followed by '//' ({scheme}://...)", _FIX)
        if url.endswith((".db", ".sqlite", ".sqlite3")):
            return f"sqlite:///{Path(url).resolve()}"
        raise SpecError("storage", f"not a storage URL: {url!r}", _FIX)
    scheme, _, rest = url.partition("://")
    backend = BACKENDS.get(scheme.lower())
    if backend is None:
        raise SpecError("storage", f"unknown storage scheme {scheme.lower()!r}", _FIX)
    return backend.normalize(scheme.lower(), rest)


def backend_of(url: str) -> Backend:
    """The backend of a normalized URL."""
    return BACKENDS[url.partition("://")[0].lower()]


def local_files(url: str | os.PathLike[str] | None) -> tuple[Path, ...]:
    """The files a store at ``url`` keeps on this machine (its first is the main one), without opening
    it: a SQLite file and its ``-wal``/``-shm``; none for a server (see ``Storage.local_files``)."""
    normalized = normalize_url(url)
    return backend_of(normalized).storage_class().files_of(normalized)


def store_tables(url: str | os.PathLike[str] | None) -> frozenset[str] | None:
    """The tables the database at ``url`` holds, read without creating or writing anything; None when the
    backend cannot tell without opening the store (see ``Storage.tables_of``)."""
    normalized = normalize_url(url)
    return backend_of(normalized).storage_class().tables_of(normalized)


def open_storage(url: str | os.PathLike[str] | None = None) -> Storage:
    """The storage at ``url``, opened once per process (and again in a child process)."""
    normalized = normalize_url(url)
    key = (os.getpid(), normalized)
    with _lock:
        storage = _opened.get(key)
        if storage is None:
            from tunebook import specio

            files = local_files(normalized)
            try:
                storage = backend_of(normalized).storage_class()(normalized)
            except SpecError:
                raise
            except Exception as exc:  # a server that is down, a bad password, ...
                raise specio.corruption_error(exc, files[0] if files else None) or SpecError(
                    "storage", f"cannot open {redact(normalized)}: {failure_line(str(exc))}", _FIX) from exc
            # A damaged SQLite file met by a later read: one line suggesting `sqlite3 FILE .recover`.
            if files:
                specio.watch_corruption([getattr(storage, "_reader", None), getattr(storage, "_writer", None)],
                                        files[0])
            _opened[key] = storage
        return storage


def redact(url: str) -> str:
    """The URL without its password, for messages and the notebook."""
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


__all__ = ["BACKENDS", "DEFAULT_STORAGE", "Backend", "Storage", "backend_of", "local_files", "normalize_url", "open_storage",
           "redact", "register_backend", "store_tables"]
