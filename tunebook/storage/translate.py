"""The one place where database driver errors become tunebook errors.

Every connection :class:`~tunebook.storage.sql.SQLStorage` opens goes
through :func:`translate_errors`; nothing from SQLAlchemy, sqlite3 or psycopg
escapes the storage package:

- the database is away (connection refused or lost, server restarting), locked
  for too long, or the disk is full: :class:`~tunebook.errors.StorageUnavailable`,
  an infrastructure fault that callers retry and never blame on the user's code;
- the file is not a database or is corrupted: :class:`~tunebook.errors.StorageError`
  naming the file and ``sqlite3 .recover``;
- anything else the driver raises: :class:`~tunebook.errors.StorageError` with the
  driver's first line.

Errors that tunebook raised on purpose inside a transaction (``ClaimLost``,
``StudyExists``, ...) pass through unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from tunebook.errors import StorageError, StorageUnavailable, TunebookError, failure_line

#: Substrings of driver messages that mean "not now, try again": an infrastructure fault.
UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "database or disk is full",
    "disk i/o error",
    "no space left on device",
    "unable to open database file",
    "connection refused",
    "could not connect",
    "connection failed",
    "server closed the connection",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "connection is closed",
    "connection already closed",
    "consuming input failed",
    "ssl syscall error",
    "broken pipe",
    "connection reset",
    "deadlock detected",
    "could not serialize access",
)
CORRUPTED = ("database disk image is malformed", "file is not a database")


def classify(exc: BaseException, where: str = "") -> TunebookError:
    """The tunebook error for a driver error ``exc`` (``where``: the store, for the message)."""
    import sqlalchemy as sa

    text = str(getattr(exc, "orig", None) or exc)
    first = failure_line(text) or type(exc).__name__
    lowered = text.lower()
    prefix = f"{where}: " if where else ""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return StorageUnavailable(f"{prefix}the connection to the database was lost ({first})")
    if any(s in lowered for s in UNAVAILABLE) or isinstance(exc, (sa.exc.TimeoutError, sa.exc.DisconnectionError)):
        return StorageUnavailable(f"{prefix}{first}")
    if any(s in lowered for s in CORRUPTED):
        return StorageError(f"{prefix}{first}; recover the file with `sqlite3 FILE .recover | sqlite3 NEW.db`")
    if isinstance(exc, OSError):  # the file system under a SQLite store
        return StorageUnavailable(f"{prefix}{first}")
    return StorageError(f"{prefix}{first}")


@contextmanager
def translate_errors(where: str = "") -> Iterator[None]:
    """Run a block of storage work; driver errors leave it as tunebook errors (see the module docstring)."""
    import sqlalchemy as sa

    try:
        yield
    except TunebookError:
        raise
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise classify(exc, where) from exc
    except Exception as exc:
        # the drivers' own exception classes (sqlite3.Error, psycopg.Error) outside SQLAlchemy's wrapping
        module = type(exc).__module__.split(".")[0]
        if module in ("sqlite3", "psycopg", "psycopg2", "_sqlite3"):
            raise classify(exc, where) from exc
        raise
