"""The SQL storage: SQLAlchemy Core over SQLite (default) or PostgreSQL.

SQLite runs in WAL mode with a long busy timeout, and every write transaction
starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue for the lock
instead of failing half-way with "database is locked". PostgreSQL claims with
``SELECT ... FOR UPDATE SKIP LOCKED``. Timestamps are seconds since the epoch.
NaN metric values are stored as NULL (SQLite cannot store NaN) and read back
as NaN. Text is stored NUL-free (PostgreSQL refuses NUL in text): a NUL in an
error message, a goal or a note is written as the two characters ``\\0``.

Every store has an id (a uuid in ``tb_meta``, made when the store is created,
or on the first write-open of an older store): checkpoint folders are keyed by
it, so two stores never share checkpoint files (see :mod:`tunebook.checkpoints`).
It also keeps a secret checkpoint key (every checkpoint file is signed with it)
and the identity of its file (SQLite: device and inode, and the path; PostgreSQL:
the database's oid and name). A store opened under another identity in both
respects is a copy (``cp a.db b.db``, ``CREATE DATABASE b TEMPLATE a``): it gets
a new id and key on that open, with one warning line, so a copy and its original
never share, or restore each other's, checkpoints.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy import event

from tunebook.storage.base import (
    COMPLETED,
    FINISHED,
    PENDING,
    REQUEUE_EVERY,
    RUNNING,
    FAILED,
    CheckpointRecord,
    ClaimLost,
    MetricBatch,
    MetricRow,
    MetricRows,
    Storage,
    StudyExists,
    StorageUnavailable,
    StudyRecord,
    TrialOutcome,
    TrialRecord,
)
from tunebook.errors import SpecError, StudyNotFound, TunebookError
from tunebook.storage.translate import translate_errors

log = logging.getLogger("tunebook")

SCHEMA_VERSION = 4

metadata = sa.MetaData()


class SafeText(sa.types.TypeDecorator):
    """Text without NUL characters (PostgreSQL refuses them; SQLite truncates some readers at them)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return no_nul(value)


def no_nul(value: Any) -> Any:
    """``value`` with every NUL written as ``\\0`` (strings only; anything else as it is)."""
    return value.replace("\x00", "\\0") if isinstance(value, str) and "\x00" in value else value


schema_table = sa.Table("tb_schema", metadata, sa.Column("version", sa.Integer, nullable=False))

meta = sa.Table(  # key/value facts about the store itself: its id
    "tb_meta",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

experiments = sa.Table(
    "tb_experiments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("notes", SafeText, nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("baseline", sa.String(200)),  # schema 2: the adopted baseline study
)

studies = sa.Table(
    "tb_studies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("tb_experiments.id"), nullable=False),
    sa.Column("goal", SafeText, nullable=False, default=""),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("objective_metric", sa.String(200), nullable=False),
    sa.Column("objective_mode", sa.String(3), nullable=False),
    sa.Column("max_train_steps", sa.Integer, nullable=False),
    sa.Column("trials_budget", sa.Integer, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("generator_version", sa.String(200), nullable=False),
    sa.Column("config_path", sa.Text),
    sa.Column("config_hash", sa.String(64)),
    sa.Column("repro_command", SafeText),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("git_dirty", sa.Boolean),
    sa.Column("parent", sa.String(200)),
    sa.Column("round", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", sa.Float, nullable=False),
)

trials = sa.Table(
    "tb_trials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("tb_studies.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("best_step", sa.Integer),
    sa.Column("infeasible_reason", SafeText),
    sa.Column("error", SafeText),
    sa.Column("worker_id", sa.String(200)),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("lost_workers", sa.Integer, nullable=False, default=0),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    #: which hyperparameters the training function asked for (JSON: read, missing, bulk); see tunebook.trial.Params
    sa.Column("params_used", sa.Text),
    #: schema 4: how a completed trial's training ended before max_train_steps (JSON: last_step,
    #: max_train_steps, reason: None when the function did not say why); NULL: it ran to its end
    sa.Column("ended", sa.Text),
    sa.UniqueConstraint("study_id", "number", name="tb_trials_study_number"),
    sa.Index("tb_trials_study_state", "study_id", "state", "number"),
)

metrics = sa.Table(
    "tb_metrics",
    metadata,
    sa.Column("trial_id", sa.Integer, sa.ForeignKey("tb_trials.id"), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("value", sa.Float),  # NULL is NaN
    sa.Index("tb_metrics_trial_name_step", "trial_id", "name", "step"),
)

notes = sa.Table(  # schema 2: conclusions of the playbook's procedures, with their evidence
    "tb_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("experiment", sa.String(200)),
    sa.Column("study", sa.String(200)),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("conclusion", SafeText, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("tb_notes_experiment", "experiment"),
)

#: Upgrades from each older schema version, applied in order inside one transaction.
MIGRATIONS: dict[int, list[str]] = {
    1: ["ALTER TABLE tb_experiments ADD COLUMN baseline VARCHAR(200)"],  # tb_notes comes from create_all
    2: ["ALTER TABLE tb_trials ADD COLUMN params_used TEXT"],
    3: ["ALTER TABLE tb_trials ADD COLUMN ended TEXT"],
}

checkpoints = sa.Table(
    "tb_checkpoints",
    metadata,
    sa.Column("trial_id", sa.Integer, sa.ForeignKey("tb_trials.id"), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("value", sa.Float),
    sa.Index("tb_checkpoints_trial", "trial_id"),
)


def _sqlite_engines(url: str) -> tuple[sa.Engine, sa.Engine]:
    """A reader engine (deferred transactions) and a writer engine (BEGIN IMMEDIATE)."""

    def make(immediate: bool) -> sa.Engine:
        engine = sa.create_engine(url, connect_args={"timeout": 60.0})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN below, not the driver, open transactions.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    return make(False), make(True)


#: A pooled PostgreSQL connection idle for longer than this is pinged before it is used again.
PING_AFTER_IDLE = 1.0


def _server_engine(url: str) -> sa.Engine:
    """PostgreSQL: one engine for reads and writes. A pooled connection idle for more than
    :data:`PING_AFTER_IDLE` seconds is pinged at checkout and replaced if the server dropped it
    (``pool_pre_ping`` would ping at every checkout: a round trip per transaction of every trial)."""
    engine = sa.create_engine(url)

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["tb_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("tb_idle_since")
        if since is not None and time.monotonic() - since > PING_AFTER_IDLE:
            try:
                alive = engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:  # the pool replaces the connection and tries again
                raise sa.exc.DisconnectionError(str(exc)) from exc
            if not alive:
                raise sa.exc.DisconnectionError("the pooled connection is gone")

    return engine


def _sqlite_tables(path: Path) -> frozenset[str] | None:
    """The tables of the SQLite file at ``path``, opened read-only; None when it is missing or unreadable."""
    import sqlite3

    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = frozenset(row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # damaged: opening the store says so, in one line
    wal = path.with_name(path.name + "-wal")
    if not tables and wal.is_file() and wal.stat().st_size > 0:
        return None  # tables a read-only connection could not see in the write-ahead log: opening tells
    return tables


def _nan_to_none(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _none_to_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


_TRIAL_COLUMNS = (
    "id, study_id, number, params, seed, state, value, best_step, infeasible_reason, error, worker_id,"
    " heartbeat_at, attempts, lost_workers, started_at, finished_at"
)


def store_now(dialect: str) -> str:
    """SQL for the store's clock in seconds since the epoch: heartbeats are stamped and judged stale by
    it, so a worker whose clock runs ahead never takes a live worker's trial (PostgreSQL: the server's
    clock; SQLite: the clock of the machine that holds the file, which every worker of it shares)."""
    if dialect == "postgresql":
        return "EXTRACT(EPOCH FROM clock_timestamp())::float8"
    return "((julianday('now') - 2440587.5) * 86400.0)"


class _Statements:
    """The per-trial statements as driver SQL, built once per store (placeholders of its driver).

    The hot path of every run (claim, metric rows, heartbeat, finish) skips
    SQLAlchemy's statement building and compilation: a few of these strings,
    sent by the driver on a pooled connection (psycopg prepares them on the
    server after a few uses).
    """

    def __init__(self, dialect: str) -> None:
        p = "?" if dialect == "sqlite" else "%s"
        now = store_now(dialect)  # heartbeats are stamped, and judged stale, by the store's clock
        # PostgreSQL: concurrent claims skip the row another claim holds instead of queueing on it;
        # SQLite: BEGIN IMMEDIATE already serializes writers.
        lock = "" if dialect == "sqlite" else " FOR UPDATE SKIP LOCKED"
        claim = (
            f"UPDATE tb_trials SET state = '{RUNNING}', worker_id = {p}, heartbeat_at = {now},"
            f" attempts = attempts + 1, started_at = COALESCE(started_at, {p})"
            " WHERE id = (SELECT id FROM tb_trials WHERE state = '{PENDING}'{scope}"
            " ORDER BY {order} LIMIT 1{lock}) AND state = '{PENDING}'"
            f" RETURNING {_TRIAL_COLUMNS}"
        )
        #: claim one pending trial, in one statement: (worker, now[, study_id])
        self.claim_study = claim.format(PENDING=PENDING, scope=f" AND study_id = {p}", order="number", lock=lock)
        self.claim_any = claim.format(PENDING=PENDING, scope="", order="study_id, number", lock=lock)
        owned = f"WHERE id = {p} AND worker_id = {p} AND state = '{RUNNING}'"
        #: (trial, worker)
        self.touch = f"UPDATE tb_trials SET heartbeat_at = {now} {owned}"
        #: (state, value, best_step, infeasible_reason, error, params_used, ended, now, trial, worker)
        self.finish = (
            f"UPDATE tb_trials SET state = {p}, value = {p}, best_step = {p}, infeasible_reason = {p}, error = {p},"
            f" params_used = {p}, ended = {p}, finished_at = {p}, heartbeat_at = {now} {owned}"
        )
        #: (trial, worker)
        self.release = f"UPDATE tb_trials SET state = '{PENDING}', worker_id = NULL, heartbeat_at = {now} {owned}"
        #: (cause, trial, worker): an infrastructure fault's cause stays in ``error`` until the trial finishes
        self.release_with_cause = (f"UPDATE tb_trials SET state = '{PENDING}', worker_id = NULL, heartbeat_at = {now},"
                                   f" error = {p} {owned}")
        self.insert_metric = f"INSERT INTO tb_metrics (trial_id, step, name, value) VALUES ({p}, {p}, {p}, {p})"
        #: .format(trial_id=int): rows (step, name, value) as they are, without a tuple per row
        self.insert_trial_metric = f"INSERT INTO tb_metrics (trial_id, step, name, value) VALUES ({{trial_id:d}}, {p}, {p}, {p})"
        #: binary COPY: the client formats nothing (a third of the CPU of the text format)
        self.copy_metrics = "COPY tb_metrics (trial_id, step, name, value) FROM STDIN (FORMAT BINARY)"
        self.copy_types = ["int4", "int4", "varchar", "float8"]
        self.drop_metrics = f"DELETE FROM tb_metrics WHERE trial_id = {p} AND step >= {p}"
        self.replace_metric = f"DELETE FROM tb_metrics WHERE trial_id = {p} AND step = {p} AND name = {p}"
        best = (  # the best finite value of a metric and its first step
            f"SELECT value, step FROM tb_metrics WHERE trial_id = {p} AND name = {p} AND value IS NOT NULL"
            f" AND value < {p} AND value > {p} ORDER BY value {{direction}}, step LIMIT 1"
        )
        complete = (
            f"UPDATE tb_trials SET state = '{COMPLETED}', value = best.value, best_step = best.step,"
            f" infeasible_reason = {p}, error = NULL, params_used = {p}, ended = {p}, finished_at = {p}, heartbeat_at = {now}"
            f" FROM ({best}) AS best"
            f" WHERE tb_trials.id = {p} AND tb_trials.worker_id = {p} AND tb_trials.state = '{RUNNING}'"
            " RETURNING tb_trials.value, tb_trials.best_step"
        )
        #: mode -> (infeasible_reason, params_used, ended, now, trial, name, inf, -inf, trial, worker): completed with the
        #: best objective, in one statement; no row when the trial is not this worker's or has no such value
        self.complete = {"min": complete.format(direction="ASC"), "max": complete.format(direction="DESC")}


class SQLStorage(Storage):
    """See :mod:`tunebook.storage.base` for the contract."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = sa.engine.make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            self._reader, self._writer = _sqlite_engines(url)
        else:
            self._reader = self._writer = _server_engine(url)
        self._file_id: tuple[int, int] | None = None
        self._fault_at: float | None = None  # time.monotonic() of this instance's last StorageUnavailable
        self._back_at: float | None = None  # time.monotonic() of its first success after that fault
        self._ensure_schema()
        self._file_id = self._identity_of_file()
        self._sql = _Statements(self.dialect)
        self._store_now = sa.literal_column(store_now(self.dialect))
        self._insert_metric_sql = self._sql.insert_metric
        self._fast_where: str | None = None
        self._requeued_at: dict[int | None, float] = {}  # study scope -> time.monotonic() of the last scan

    # schema ----------------------------------------------------------------
    def _ensure_schema(self) -> None:
        with self._write() as conn:
            if self.dialect == "postgresql":
                # Two workers starting at once must not both create the tables.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7301452)"))
            metadata.create_all(conn, checkfirst=True)
            self._store_id = self._ensure_store_id(conn)
            found = conn.execute(sa.select(schema_table.c.version)).scalar()
            if found is None:
                conn.execute(schema_table.insert().values(version=SCHEMA_VERSION))
            elif found < SCHEMA_VERSION:
                for version in range(found, SCHEMA_VERSION):
                    for statement in MIGRATIONS.get(version, []):
                        conn.exec_driver_sql(statement)
                conn.execute(schema_table.update().values(version=SCHEMA_VERSION))
            elif found > SCHEMA_VERSION:
                raise SpecError(
                    "storage",
                    f"the store was written by a newer tunebook (schema {found}, this one reads {SCHEMA_VERSION})",
                    "upgrade tunebook",
                )

    def _file_identity(self, conn: sa.Connection) -> dict[str, str] | None:
        """Where this store lives and which file (or database object) it is; None when it has no file."""
        if self.dialect == "sqlite":
            database = sa.engine.make_url(self.url).database
            if not database or database == ":memory:" or database.startswith("file:"):
                return None
            st = os.stat(database)
            return {"where": os.path.abspath(database), "file": f"{st.st_dev}:{st.st_ino}"}
        if self.dialect == "postgresql":
            row = conn.exec_driver_sql(
                "SELECT current_database(), oid FROM pg_database WHERE datname = current_database()").first()
            return None if row is None else {"where": str(row[0]), "file": str(row[1])}
        return None

    def _ensure_store_id(self, conn: sa.Connection) -> str:
        """The store's id, made now if the store has none (a new store, or one from before ids), or made
        anew when this store is a copy of another (see the module's doc); also its checkpoint key."""
        facts = {k: v for k, v in conn.execute(sa.select(meta.c.key, meta.c.value))}
        store_id, key, here = facts.get("store_id"), facts.get("checkpoint_key"), self._file_identity(conn)
        was = json.loads(facts["file_identity"]) if facts.get("file_identity") else None
        if store_id is not None and here is not None and was is not None \
                and was.get("where") != here["where"] and was.get("file") != here["file"]:
            copied, store_id, key = store_id, None, None
            new = uuid.uuid4().hex
            log.warning("tunebook: %s is a copy of store %s (%s); it gets its own id %s so that the two never "
                        "share checkpoints (its trials do not resume from the original's)",
                        here["where"], copied, was.get("where"), new)
            store_id = new
        changes = {"store_id": store_id or uuid.uuid4().hex, "checkpoint_key": key or secrets.token_hex(32),
                   "file_identity": json.dumps(here, sort_keys=True) if here is not None else None}
        for name, value in changes.items():
            if value is not None and facts.get(name) != value:
                conn.execute(meta.delete().where(meta.c.key == name))
                conn.execute(meta.insert().values(key=name, value=value))
        self._checkpoint_key = bytes.fromhex(changes["checkpoint_key"])
        return str(changes["store_id"])

    @property
    def checkpoint_key(self) -> bytes | None:
        """The secret every checkpoint file of this store is signed with (see :mod:`tunebook.checkpoints`)."""
        if getattr(self, "_checkpoint_key", None) is None:
            try:
                with self._read() as conn:
                    found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "checkpoint_key")).scalar()
            except TunebookError:  # an old store read without its tb_meta table
                return None
            self._checkpoint_key = bytes.fromhex(found) if found else None
        return self._checkpoint_key

    @classmethod
    def files_of(cls, url: str) -> tuple[Path, ...]:
        """SQLite: the file and its ``-wal``/``-shm``; PostgreSQL: none (a server keeps its own)."""
        if not url.startswith("sqlite:///"):
            return ()
        main = Path(url[len("sqlite:///"):])
        return (main, main.with_name(main.name + "-wal"), main.with_name(main.name + "-shm"))

    @classmethod
    def tables_of(cls, url: str) -> frozenset[str] | None:
        """SQLite: the file opened read-only (``mode=ro``: a missing file is not made); PostgreSQL: the
        tables of the connection's search path, on one connection that runs one read-only query."""
        if url.startswith("sqlite:///"):
            return _sqlite_tables(Path(url[len("sqlite:///"):]))
        if sa.engine.make_url(url).get_backend_name() != "postgresql":
            return None
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 10})
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                rows = conn.exec_driver_sql(
                    "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = ANY(current_schemas(false))")
                return frozenset(row[0] for row in rows)
        except sa.exc.SQLAlchemyError:
            return None  # a server that is down, a bad password: opening the store says which, in one line
        finally:
            engine.dispose()

    def _identity_of_file(self) -> tuple[int, int] | None:
        files = self.local_files()
        if not files:
            return None
        stat = os.stat(files[0])
        return (stat.st_dev, stat.st_ino)

    def _check_file(self) -> None:
        """SQLite: the file this store opened is still the one at its path. Deleted (with its -wal and
        -shm) or replaced, the connections would go on writing into a file nobody can open again:
        :class:`StorageUnavailable` (an infrastructure fault: retried, then exit 3), never a silent success."""
        main = self.local_files()[0]
        try:
            stat = os.stat(main)
        except FileNotFoundError:
            raise StorageUnavailable(f"the SQLite file {main} is gone (deleted while the store was open)") from None
        if (stat.st_dev, stat.st_ino) != self._file_id:
            raise StorageUnavailable(f"the SQLite file {main} was replaced while the store was open")

    @property
    def store_id(self) -> str | None:
        """This store's id (a uuid): checkpoint folders and files are keyed by it. None for an
        old store opened without writing (read-only) that has none yet."""
        if getattr(self, "_store_id", None) is None:
            try:
                with self._read() as conn:
                    self._store_id = conn.execute(sa.select(meta.c.value).where(meta.c.key == "store_id")).scalar()
            except TunebookError:  # an old store read without its tb_meta table
                return None
        return self._store_id

    def close(self) -> None:
        self._reader.dispose()
        self._writer.dispose()

    # the error boundary: every connection is opened here ------------------------
    @contextmanager
    def _noting_faults(self) -> Iterator[None]:
        """Remember when this instance last met an unavailable store, and when it first reached it again
        (see :meth:`requeue_stale`)."""
        try:
            yield
        except StorageUnavailable:
            self._fault_at = time.monotonic()
            raise
        if self._fault_at is not None and (self._back_at is None or self._back_at < self._fault_at):
            self._back_at = time.monotonic()

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A reading connection; driver errors leave as tunebook errors (:mod:`.translate`)."""
        with self._noting_faults(), translate_errors(self._where()):
            with self._reader.connect() as conn:
                yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``); driver errors leave as tunebook errors."""
        with self._noting_faults(), translate_errors(self._where()):
            if self._file_id is not None:
                self._check_file()
            with self._writer.begin() as conn:
                yield conn

    @contextmanager
    def _fast(self, single: bool = False) -> Iterator[Any]:
        """A write transaction for the per-trial hot path: a driver cursor on a pooled connection of
        the writer engine (its pragmas, its pool), the statements of :class:`_Statements`; committed
        at the end, rolled back whole on any error, driver errors translated like :meth:`_write`'s.

        ``single``: the transaction is one statement; on PostgreSQL it then runs in autocommit mode
        (no BEGIN and COMMIT round trips; one statement is atomic on its own).
        """
        where = self._fast_where
        if where is None:
            where = self._fast_where = self._where()
        sqlite = self.dialect == "sqlite"
        with self._noting_faults(), translate_errors(where):
            if self._file_id is not None:
                self._check_file()
            pooled = self._writer.raw_connection()
            try:
                dbapi = pooled.driver_connection
                if single and not sqlite:
                    dbapi.autocommit = True
                    try:
                        yield dbapi.cursor()
                    except BaseException as exc:
                        if isinstance(exc, Exception) and self._writer.dialect.is_disconnect(exc, dbapi, None):
                            pooled.invalidate(exc)
                        raise
                    finally:
                        if not dbapi.closed:
                            dbapi.autocommit = False
                    return
                cursor = dbapi.cursor()
                if sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield cursor
                    if sqlite:
                        cursor.execute("COMMIT")
                    else:
                        dbapi.commit()
                except BaseException as exc:
                    try:
                        if isinstance(exc, Exception) and self._writer.dialect.is_disconnect(exc, dbapi, cursor):
                            pooled.invalidate(exc)  # the connection is broken: never hand it out again
                        elif sqlite:
                            if dbapi.in_transaction:
                                cursor.execute("ROLLBACK")
                        else:
                            dbapi.rollback()
                    except Exception:
                        pooled.invalidate()
                    raise
            finally:
                pooled.close()

    def _where(self) -> str:
        from tunebook.storage import redact

        return f"store {redact(self.url)}"

    def _lock_study(self, conn: sa.Connection, study_id: int) -> Any:
        """Serialize the study's structural writes (numbers, budget): a row lock on PostgreSQL,
        the database lock SQLite's ``BEGIN IMMEDIATE`` already holds. Returns (budget, seed)."""
        row = conn.execute(
            sa.select(studies.c.trials_budget, studies.c.seed).where(studies.c.id == study_id).with_for_update()
        ).first()
        if row is None:
            raise StudyNotFound(f"no study with id {study_id}")
        return row

    # studies ---------------------------------------------------------------
    @staticmethod
    def _study(row: Any, experiment: str) -> StudyRecord:
        return StudyRecord(
            id=row.id,
            name=row.name,
            spec=json.loads(row.spec),
            spec_hash=row.spec_hash,
            objective_metric=row.objective_metric,
            objective_mode=row.objective_mode,
            max_train_steps=row.max_train_steps,
            trials_budget=row.trials_budget,
            seed=row.seed,
            generator_version=row.generator_version,
            experiment=experiment,
            goal=row.goal,
            config_path=row.config_path,
            config_hash=row.config_hash,
            repro_command=row.repro_command,
            git_commit=row.git_commit,
            git_dirty=row.git_dirty,
            parent=row.parent,
            round=row.round,
            created_at=row.created_at,
        )

    def _study_query(self) -> sa.Select:
        return sa.select(studies, experiments.c.name.label("experiment")).join(
            experiments, experiments.c.id == studies.c.experiment_id
        )

    def create_study(self, study: StudyRecord, trial_specs: Sequence[dict[str, Any]]) -> int:
        now = time.time()
        with self._write() as conn:
            if self.dialect == "postgresql":
                # Two processes creating studies at once (same name, or a new experiment for both)
                # take turns instead of one failing on a unique constraint.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7301453)"))
            if conn.execute(sa.select(studies.c.id).where(studies.c.name == study.name)).first():
                raise StudyExists(study.name)
            experiment_id = conn.execute(
                sa.select(experiments.c.id).where(experiments.c.name == study.experiment)
            ).scalar()
            if experiment_id is None:
                experiment_id = conn.execute(
                    experiments.insert().values(name=study.experiment, notes="", created_at=now)
                ).inserted_primary_key[0]
            study_id = conn.execute(
                studies.insert().values(
                    name=study.name,
                    experiment_id=experiment_id,
                    goal=study.goal,
                    spec=json.dumps(study.spec, sort_keys=True),
                    spec_hash=study.spec_hash,
                    objective_metric=study.objective_metric,
                    objective_mode=study.objective_mode,
                    max_train_steps=study.max_train_steps,
                    trials_budget=study.trials_budget,
                    seed=study.seed,
                    generator_version=study.generator_version,
                    config_path=study.config_path,
                    config_hash=study.config_hash,
                    repro_command=study.repro_command,
                    git_commit=study.git_commit,
                    git_dirty=study.git_dirty,
                    parent=study.parent,
                    round=study.round,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            self._insert_trials(conn, study_id, trial_specs)
        study.id, study.created_at = study_id, now
        return study_id

    @staticmethod
    def _insert_trials(conn: sa.Connection, study_id: int, trial_specs: Sequence[dict[str, Any]]) -> None:
        if trial_specs:
            conn.execute(
                trials.insert(),
                [
                    {
                        "study_id": study_id,
                        "number": t["number"],
                        "params": json.dumps(t["params"]),
                        "seed": t["seed"],
                        "state": PENDING,
                        "attempts": 0,
                        "lost_workers": 0,
                    }
                    for t in trial_specs
                ],
            )

    def extend_study(self, study_id: int, trial_specs: Sequence[dict[str, Any]], budget: int) -> None:
        """Append the trials not stored yet and raise the budget; a concurrent extend of the same
        study to the same budget is a no-op, never a duplicate number."""
        with self._write() as conn:
            current, _ = self._lock_study(conn, study_id)
            stored = {
                n for (n,) in conn.execute(sa.select(trials.c.number).where(trials.c.study_id == study_id))
            }
            self._insert_trials(conn, study_id, [t for t in trial_specs if t["number"] not in stored])
            if budget > current:
                conn.execute(studies.update().where(studies.c.id == study_id).values(trials_budget=budget))

    def propose_trial(
        self, study_id: int, propose: Callable[[int, int], tuple[dict[str, Any], int] | None],
        *, beyond_budget: int = 0,
    ) -> int | None:
        with self._write() as conn:
            budget, study_seed = self._lock_study(conn, study_id)
            count, last = conn.execute(
                sa.select(sa.func.count(), sa.func.max(trials.c.number)).where(trials.c.study_id == study_id)
            ).first()
            if count >= budget + beyond_budget:
                return None
            number = 0 if last is None else last + 1
            proposed = propose(number, int(study_seed))
            if proposed is None:
                return None
            params, seed = proposed
            self._insert_trials(conn, study_id, [{"number": number, "params": params, "seed": seed}])
        return number

    def add_trials(
        self, study_id: int,
        plan: Callable[[int, int, int], tuple[Sequence[dict[str, Any]], dict[str, Any] | None]],
        *, beyond_budget: int = 0,
    ) -> list[int]:
        with self._write() as conn:
            budget, study_seed = self._lock_study(conn, study_id)
            count, last = conn.execute(
                sa.select(sa.func.count(), sa.func.max(trials.c.number)).where(trials.c.study_id == study_id)
            ).first()
            first = 0 if last is None else last + 1
            room = budget + beyond_budget - count
            if room <= 0:
                return []
            specs, note = plan(first, int(study_seed), room)
            specs = list(specs)[:room]
            if not specs and note is None:
                return []
            numbers = list(range(first, first + len(specs)))
            if specs:
                self._insert_trials(conn, study_id, [{"number": n, "params": t["params"], "seed": t["seed"]}
                                                     for n, t in zip(numbers, specs)])
            if note is not None:
                name = conn.execute(sa.select(studies.c.name).where(studies.c.id == study_id)).scalar()
                conn.execute(notes.insert().values(
                    kind=note["kind"], conclusion=note["conclusion"],
                    evidence=json.dumps(note["evidence"], default=str, sort_keys=True),
                    experiment=note.get("experiment"), study=name, created_at=time.time(),
                ))
        return numbers

    def record_outcomes(self, study_id: int, outcomes: Sequence[TrialOutcome]) -> None:
        if not outcomes:
            return
        now = time.time()
        with self._write() as conn:
            ids = {
                r.number: r.id
                for r in conn.execute(
                    sa.select(trials.c.number, trials.c.id).where(
                        trials.c.study_id == study_id,
                        trials.c.state == PENDING,
                        trials.c.number.in_([o.number for o in outcomes]),
                    )
                )
            }
            missing = [o.number for o in outcomes if o.number not in ids]
            if missing:
                raise StudyNotFound(f"study {study_id} has no pending trial number {missing[0]}")
            rows = [
                (ids[o.number], int(step), name, _nan_to_none(value))
                for o in outcomes
                for step, name, value in o.metrics
            ]
            if rows:
                conn.exec_driver_sql(self._insert_metric_sql, rows)
            for o in outcomes:
                if o.state not in FINISHED:
                    raise SpecError("state", f"not a finished state: {o.state!r}", "use completed, infeasible or failed")
            conn.execute(
                trials.update().where(trials.c.id == sa.bindparam("b_id")).values(
                    state=sa.bindparam("b_state"), value=sa.bindparam("b_value"), best_step=sa.bindparam("b_step"),
                    infeasible_reason=sa.bindparam("b_reason"), error=sa.bindparam("b_error"),
                    attempts=trials.c.attempts + 1, started_at=now, finished_at=now,
                ),
                [
                    {"b_id": ids[o.number], "b_state": o.state, "b_value": _nan_to_none(o.value),
                     "b_step": o.best_step, "b_reason": o.infeasible_reason, "b_error": o.error}
                    for o in outcomes
                ],
            )

    def get_study(self, name: str) -> StudyRecord | None:
        with self._read() as conn:
            row = conn.execute(self._study_query().where(studies.c.name == name)).first()
        return None if row is None else self._study(row, row.experiment)

    def list_studies(self) -> list[StudyRecord]:
        with self._read() as conn:
            rows = conn.execute(self._study_query().order_by(studies.c.created_at, studies.c.id)).all()
        return [self._study(r, r.experiment) for r in rows]

    def study_summaries(self) -> list[dict[str, Any]]:
        counts = (
            sa.select(trials.c.study_id, trials.c.state, sa.func.count().label("n"))
            .group_by(trials.c.study_id, trials.c.state)
        )
        with self._read() as conn:
            by_study: dict[int, dict[str, int]] = {}
            for row in conn.execute(counts):
                by_study.setdefault(row.study_id, {})[row.state] = row.n
            out = []
            for study in conn.execute(self._study_query().order_by(studies.c.created_at, studies.c.id)):
                order = trials.c.value.asc() if study.objective_mode == "min" else trials.c.value.desc()
                best = conn.execute(
                    sa.select(trials.c.number, trials.c.value, trials.c.best_step)
                    .where(
                        trials.c.study_id == study.id,
                        trials.c.state == "completed",
                        trials.c.value.is_not(None),
                    )
                    .order_by(order, trials.c.number)
                    .limit(1)
                ).first()
                out.append(
                    {
                        "study": self._study(study, study.experiment),
                        "counts": by_study.get(study.id, {}),
                        "best": None if best is None else {"number": best.number, "value": best.value, "step": best.best_step},
                    }
                )
        return out

    # trials ----------------------------------------------------------------
    @staticmethod
    def _trial(row: Any) -> TrialRecord:
        return TrialRecord(
            id=row.id,
            study_id=row.study_id,
            number=row.number,
            params=json.loads(row.params),
            seed=row.seed,
            state=row.state,
            value=row.value,
            best_step=row.best_step,
            infeasible_reason=row.infeasible_reason,
            error=row.error,
            worker_id=row.worker_id,
            heartbeat_at=row.heartbeat_at,
            attempts=row.attempts,
            lost_workers=row.lost_workers,
            started_at=row.started_at,
            finished_at=row.finished_at,
            ended=json.loads(row.ended) if row.ended else None,
        )

    def get_trials(self, study_id: int, states: Iterable[str] | None = None) -> list[TrialRecord]:
        query = sa.select(trials).where(trials.c.study_id == study_id).order_by(trials.c.number)
        if states is not None:
            query = query.where(trials.c.state.in_(list(states)))
        with self._read() as conn:
            return [self._trial(r) for r in conn.execute(query)]

    TRIAL_ORDERS = ("number", "value", "best_step", "state", "attempts")

    def trials_page(
        self,
        study_id: int,
        *,
        states: Iterable[str] | None = None,
        order: str = "number",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
        params_equal: Mapping[str, Any] | None = None,
        params_between: Mapping[str, tuple[float | None, float | None]] | None = None,
    ) -> tuple[list[TrialRecord], int]:
        """One page of a study's trials, filtered and sorted in SQL (hyperparameters through the database's
        JSON functions: SQLite's ``json_extract``, PostgreSQL's ``jsonb``), and the filtered total."""
        if order not in self.TRIAL_ORDERS and not order.startswith("params."):
            raise SpecError("order", f"unknown order {order!r}", f"use one of {', '.join(self.TRIAL_ORDERS)} or params.<name>")
        where = [trials.c.study_id == study_id]
        if states:
            where.append(trials.c.state.in_(list(states)))
        for name, value in (params_equal or {}).items():
            where.append(self._param(name) == (sa.cast(sa.literal(json.dumps(value)), self._jsonb()) if self._jsonb() else value))
        for name, (lo, hi) in (params_between or {}).items():
            column = self._param(name, number=True)
            where += ([column >= lo] if lo is not None else []) + ([column <= hi] if hi is not None else [])
        column = trials.c[order] if order in self.TRIAL_ORDERS else self._param(order[len("params."):])
        # NULL values (no value yet, or no such hyperparameter) always last, whatever the direction
        keys = [column.is_(None), column.desc() if descending else column.asc(), trials.c.number]
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(trials).where(*where)).scalar() or 0
            rows = conn.execute(sa.select(trials).where(*where).order_by(*keys).offset(offset).limit(limit)).all()
        return [self._trial(r) for r in rows], int(total)

    def _jsonb(self) -> Any:
        if self.dialect != "postgresql":
            return None
        from sqlalchemy.dialects.postgresql import JSONB

        return JSONB

    def _param(self, name: str, number: bool = False) -> Any:
        """A hyperparameter of the trials' JSON ``params`` as a SQL expression (a number for ranges)."""
        jsonb = self._jsonb()
        if jsonb is None:
            return sa.func.json_extract(trials.c.params, f'$."{name}"')
        if number:
            return sa.cast(sa.cast(trials.c.params, jsonb).op("->>")(name), sa.Float)
        return sa.cast(trials.c.params, jsonb).op("->")(name)

    def study_signature(self, study_id: int) -> dict[str, Any]:
        """What changes while a study runs: counts by state and the latest finish/heartbeat."""
        with self._read() as conn:
            counts = {
                r.state: r.n
                for r in conn.execute(
                    sa.select(trials.c.state, sa.func.count().label("n")).where(trials.c.study_id == study_id).group_by(trials.c.state)
                )
            }
            latest = conn.execute(
                sa.select(sa.func.max(trials.c.finished_at), sa.func.max(trials.c.heartbeat_at)).where(trials.c.study_id == study_id)
            ).first()
        return {"counts": counts, "finished_at": latest[0], "heartbeat_at": latest[1]}

    def get_trial_by_number(self, study_id: int, number: int) -> TrialRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(trials).where(trials.c.study_id == study_id, trials.c.number == number)).first()
        return None if row is None else self._trial(row)

    def get_trial(self, trial_id: int) -> TrialRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(trials).where(trials.c.id == trial_id)).first()
        return None if row is None else self._trial(row)

    def _lock(self, query: sa.Select) -> sa.Select:
        # SQLite's BEGIN IMMEDIATE already serializes writers; PostgreSQL locks rows.
        return query.with_for_update(skip_locked=True) if self.dialect == "postgresql" else query

    def _requeue_stale(
        self, conn: sa.Connection, now: float, stale_after: float, scope: list[Any], max_lost_workers: int
    ) -> dict[str, int]:
        stale = conn.execute(
            self._lock(
                sa.select(trials.c.id, trials.c.lost_workers, trials.c.worker_id)
                .where(trials.c.state == RUNNING, trials.c.heartbeat_at < self._store_now - stale_after, *scope)
            )
        ).all()
        out = {"requeued": 0, "failed": 0}
        for row in stale:
            lost = row.lost_workers + 1
            if lost >= max_lost_workers:
                values: dict[str, Any] = {
                    "state": FAILED, "finished_at": now,
                    # worded as the other path that counts a lost worker (lose_trial): one phrase to look for
                    "error": f"its worker {row.worker_id} stopped heartbeating for {stale_after:g} s (presumed dead); "
                    f"failed after {lost} lost workers (max_lost_workers={max_lost_workers})",
                }
                out["failed"] += 1
            else:
                values = {"state": PENDING, "worker_id": None,
                          "error": f"its worker {row.worker_id} stopped heartbeating for {stale_after:g} s (presumed dead)"}
                out["requeued"] += 1
            conn.execute(trials.update().where(trials.c.id == row.id).values(lost_workers=lost, **values))
        return out

    def requeue_stale(
        self, stale_after: float, study_id: int | None = None, max_lost_workers: int = 3
    ) -> dict[str, int]:
        """See the contract. Not until this instance has reached the store again for ``stale_after``
        after an outage (a duration measured here, from its first success after its last fault, however
        long the outage lasted): until then every live worker's heartbeat is old because it could not
        reach the store either, so nothing is judged dead before it had that long to."""
        scope = [] if study_id is None else [trials.c.study_id == study_id]
        self._requeued_at[study_id] = time.monotonic()
        if self._fault_at is not None:
            back = self._back_at if self._back_at is not None and self._back_at >= self._fault_at else None
            if back is None or time.monotonic() - back < stale_after:
                return {"requeued": 0, "failed": 0}
        with self._write() as conn:
            return self._requeue_stale(conn, time.time(), stale_after, scope, max_lost_workers)

    def claim_trial(
        self,
        worker_id: str,
        study_id: int | None = None,
        stale_after: float | None = None,
        max_lost_workers: int = 3,
    ) -> TrialRecord | None:
        requeued = False
        if stale_after is not None:
            # A worker that stopped heartbeating is presumed dead: its trial goes back to pending.
            # Scanned for every so often, and whenever nothing is pending (see the contract).
            last = self._requeued_at.get(study_id)
            if last is None or time.monotonic() - last >= min(REQUEUE_EVERY, stale_after / 2):
                self.requeue_stale(stale_after, study_id, max_lost_workers)
                requeued = True
        record = self._claim(worker_id, study_id)
        if record is None and stale_after is not None and not requeued:
            self.requeue_stale(stale_after, study_id, max_lost_workers)
            record = self._claim(worker_id, study_id)
        return record

    def _claim(self, worker_id: str, study_id: int | None) -> TrialRecord | None:
        """One statement: the first pending trial (by study, number) becomes this worker's."""
        now = time.time()
        with self._fast(single=True) as cursor:
            if study_id is None:
                cursor.execute(self._sql.claim_any, (worker_id, now))
            else:
                cursor.execute(self._sql.claim_study, (worker_id, now, study_id))
            rows = cursor.fetchall()  # all: SQLite completes the statement before the commit
        return self._trial_from_tuple(rows[0]) if rows else None

    @staticmethod
    def _trial_from_tuple(row: Sequence[Any]) -> TrialRecord:
        (id_, study_id, number, params, seed, state, value, best_step, infeasible_reason, error, worker_id,
         heartbeat_at, attempts, lost_workers, started_at, finished_at) = row
        return TrialRecord(
            id=id_, study_id=study_id, number=number, params=json.loads(params), seed=seed, state=state,
            value=value, best_step=best_step, infeasible_reason=infeasible_reason, error=error,
            worker_id=worker_id, heartbeat_at=heartbeat_at, attempts=attempts, lost_workers=lost_workers,
            started_at=started_at, finished_at=finished_at,
        )

    def _touch(self, conn: sa.Connection, trial_id: int, owner: str, **values: Any) -> None:
        """Heartbeat (and set ``values``) only while ``owner`` still runs the trial."""
        owned = sa.and_(trials.c.id == trial_id, trials.c.worker_id == owner, trials.c.state == RUNNING)
        result = conn.execute(trials.update().where(owned).values(heartbeat_at=self._store_now, **values))
        if result.rowcount != 1:
            raise ClaimLost(f"trial {trial_id} is no longer running under worker {owner}")

    def _owned(self, cursor: Any, statement: str, params: Sequence[Any], trial_id: int, owner: str) -> None:
        """Run an UPDATE of the trial that holds only while ``owner`` runs it; :class:`ClaimLost` otherwise
        (the transaction is then rolled back whole)."""
        cursor.execute(statement, params)
        if cursor.rowcount != 1:
            raise ClaimLost(f"trial {trial_id} is no longer running under worker {owner}")

    def heartbeat(self, trial_id: int, worker_id: str) -> None:
        with self._fast(single=True) as cursor:
            self._owned(cursor, self._sql.touch, (trial_id, worker_id), trial_id, worker_id)

    def finish_trial(
        self,
        trial_id: int,
        worker_id: str,
        state: str,
        *,
        value: float | None = None,
        best_step: int | None = None,
        infeasible_reason: str | None = None,
        error: str | None = None,
        metrics: MetricBatch | None = None,
        objective: tuple[str, str] | None = None,
        params_used: Mapping[str, Any] | None = None,
        ended: Mapping[str, Any] | None = None,
    ) -> tuple[str, float | None, int | None]:
        if state not in FINISHED:
            raise SpecError("state", f"not a finished state: {state!r}", "use completed, infeasible or failed")
        if objective is not None and state != COMPLETED:
            raise SpecError("objective", f"given for a {state} trial", "give it with state='completed' only")
        infeasible_reason, error = no_nul(infeasible_reason), no_nul(error)  # PostgreSQL refuses NUL in text
        used = None if params_used is None else no_nul(json.dumps(params_used, sort_keys=True, default=str))
        end = None if ended is None else no_nul(json.dumps(ended, sort_keys=True, default=str))
        with self._fast(single=metrics is None and objective is None) as cursor:
            # The ownership check comes last, in the final UPDATE: a lost claim rolls back the rows too.
            if metrics is not None:
                self._write_batch(cursor, trial_id, metrics.rows, metrics.drop_from_step, metrics.replace)
            now = time.time()
            if objective is not None:
                metric, mode = objective
                cursor.execute(self._sql.complete[mode], (infeasible_reason, used, end, now, trial_id, metric,
                                                          math.inf, -math.inf, trial_id, worker_id))
                done = cursor.fetchall()  # all: SQLite completes the statement before the commit
                if done:
                    return state, float(done[0][0]), int(done[0][1])
                # not this worker's trial (ClaimLost below), or the objective has no finite value
                state, value, best_step = FAILED, None, None
            params = (state, _nan_to_none(value), best_step, infeasible_reason, error, used, end, now, trial_id,
                      worker_id)
            self._owned(cursor, self._sql.finish, params, trial_id, worker_id)
        return state, value, best_step

    def release_trial(self, trial_id: int, worker_id: str, cause: str | None = None,
                      metrics: MetricBatch | None = None) -> None:
        with self._fast(single=metrics is None) as cursor:
            if metrics is not None:
                self._write_batch(cursor, trial_id, metrics.rows, metrics.drop_from_step, metrics.replace)
            if cause is None:
                self._owned(cursor, self._sql.release, (trial_id, worker_id), trial_id, worker_id)
            else:
                self._owned(cursor, self._sql.release_with_cause, (no_nul(cause), trial_id, worker_id),
                            trial_id, worker_id)

    def lose_trial(self, trial_id: int, worker_id: str, cause: str, max_lost_workers: int = 3) -> str:
        with self._write() as conn:
            lost = conn.execute(
                self._lock(sa.select(trials.c.lost_workers).where(trials.c.id == trial_id))
            ).scalar()
            if lost is None:
                raise ClaimLost(f"trial {trial_id} does not exist")
            lost += 1
            if lost >= max_lost_workers:
                state = FAILED
                values: dict[str, Any] = {
                    "finished_at": time.time(),
                    "error": f"{cause}; failed after {lost} lost workers (max_lost_workers={max_lost_workers})",
                }
            else:
                state, values = PENDING, {"worker_id": None, "error": cause}
            self._touch(conn, trial_id, worker_id, state=state, lost_workers=lost, **values)
        return state

    def release_worker_trials(self, worker_ids: Iterable[str]) -> int:
        ids = list(worker_ids)
        if not ids:
            return 0
        with self._write() as conn:
            result = conn.execute(
                trials.update()
                .where(trials.c.state == RUNNING, trials.c.worker_id.in_(ids))
                .values(state=PENDING, worker_id=None)
            )
        return result.rowcount

    def retry_failed(self, study_id: int) -> int:
        with self._writer.begin() as conn:
            result = conn.execute(
                trials.update()
                .where(trials.c.study_id == study_id, trials.c.state == FAILED)
                .values(state=PENDING, worker_id=None, lost_workers=0, finished_at=None)
            )
        return result.rowcount

    # metrics ---------------------------------------------------------------
    def write_metrics(
        self,
        trial_id: int,
        worker_id: str,
        rows: Sequence[tuple[int, str, float]],
        drop_from_step: int | None = None,
        replace: Sequence[tuple[int, str]] = (),
    ) -> None:
        with self._fast() as cursor:
            self._owned(cursor, self._sql.touch, (trial_id, worker_id), trial_id, worker_id)
            self._write_batch(cursor, trial_id, rows, drop_from_step, replace)

    #: PostgreSQL: batches of at least this many rows go by COPY (two round trips, the least CPU per
    #: row); smaller ones (e.g. a trial's last few points) by one pipelined INSERT (one round trip).
    COPY_FROM = 16

    def _write_batch(
        self,
        cursor: Any,
        trial_id: int,
        rows: Sequence[tuple[int, str, float]],
        drop_from_step: int | None,
        replace: Sequence[tuple[int, str]],
    ) -> None:
        """Inside a transaction: drop, replace, insert (see ``write_metrics``). The hot path of every run:
        plain tuples through the driver (SQLite: ``executemany``; PostgreSQL: ``COPY``)."""
        if drop_from_step is not None:
            # A resumed attempt re-logs these steps: keep one copy of each curve point.
            cursor.execute(self._sql.drop_metrics, (trial_id, int(drop_from_step)))
        if replace:  # (step, name) points logged again: the new value replaces the stored one
            cursor.executemany(self._sql.replace_metric, [(trial_id, int(s), n) for s, n in replace])
        if not rows:
            return
        checked = type(rows) is MetricRows  # int steps, float values: no conversion
        if self.dialect == "postgresql" and len(rows) >= self.COPY_FROM:
            with cursor.copy(self._sql.copy_metrics) as copy:
                copy.set_types(self._sql.copy_types)
                write_row = copy.write_row
                if checked:
                    for s, n, v in rows:
                        write_row((trial_id, s, n, None if v != v else v))
                else:
                    for s, n, v in rows:
                        v = float(v)
                        write_row((trial_id, int(s), n, None if v != v else v))
        elif checked and self.dialect == "sqlite":  # SQLite stores a NaN bound as a parameter as NULL itself
            cursor.executemany(self._sql.insert_trial_metric.format(trial_id=trial_id), rows)
        else:
            cursor.executemany(
                self._sql.insert_metric, [(trial_id, int(s), n, None if v != v else float(v)) for s, n, v in rows]
            )

    def get_metrics(self, trial_id: int, names: Iterable[str] | None = None) -> list[MetricRow]:
        query = sa.select(metrics.c.step, metrics.c.name, metrics.c.value).where(metrics.c.trial_id == trial_id)
        if names is not None:
            query = query.where(metrics.c.name.in_(list(names)))
        with self._read() as conn:
            rows = conn.execute(query.order_by(metrics.c.name, metrics.c.step)).all()
        return [MetricRow(r.step, r.name, _none_to_nan(r.value)) for r in rows]

    def trial_rows(self, study_id: int) -> list[tuple[int, int, str, dict[str, Any], float | None, int | None,
                                                      str | None, int]]:
        query = (sa.select(trials.c.number, trials.c.id, trials.c.state, trials.c.params, trials.c.value,
                           trials.c.best_step, trials.c.infeasible_reason, trials.c.seed)
                 .where(trials.c.study_id == study_id).order_by(trials.c.number))
        with self._read() as conn:
            raw = conn.execute(query).cursor.fetchall()  # the driver's own tuples (no Row objects)
        decoded = json.loads("[" + ",".join(r[3] for r in raw) + "]")  # one call decodes every trial's params
        return [(number, id_, state, params, value, best_step, reason, seed)
                for (number, id_, state, _, value, best_step, reason, seed), params in zip(raw, decoded)]

    def metric_rows(self, trial_ids: Sequence[int], name: str) -> list[tuple[int, int, float | None]]:
        query = (sa.select(metrics.c.trial_id, metrics.c.step, metrics.c.value)
                 .where(metrics.c.name == name, metrics.c.trial_id.in_(list(trial_ids)))
                 .order_by(metrics.c.trial_id, metrics.c.step))
        with self._read() as conn:
            return conn.execute(query).cursor.fetchall()

    def best_metric(self, trial_id: int, name: str, mode: str) -> tuple[float, int] | None:
        order = metrics.c.value.asc() if mode == "min" else metrics.c.value.desc()
        query = (
            sa.select(metrics.c.value, metrics.c.step)
            .where(metrics.c.trial_id == trial_id, metrics.c.name == name, metrics.c.value.is_not(None))
            # +/-inf are stored as such; they never count as a best value.
            .where(metrics.c.value < float("inf"), metrics.c.value > float("-inf"))
            .order_by(order, metrics.c.step)
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else (float(row.value), int(row.step))

    # notebook --------------------------------------------------------------
    def add_note(self, kind: str, conclusion: str, evidence: dict[str, Any], *, experiment: str | None = None,
                 study: str | None = None) -> int:
        with self._write() as conn:
            return conn.execute(notes.insert().values(
                kind=kind, conclusion=conclusion, evidence=json.dumps(evidence, default=str, sort_keys=True),
                experiment=experiment, study=study, created_at=time.time(),
            )).inserted_primary_key[0]

    def get_notes(self, *, experiment: str | None = None, study: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(notes).order_by(notes.c.created_at, notes.c.id)
        if experiment is not None:
            query = query.where(notes.c.experiment == experiment)
        if study is not None:
            query = query.where(notes.c.study == study)
        if kind is not None:
            query = query.where(notes.c.kind == kind)
        with self._read() as conn:
            return [{"id": r.id, "kind": r.kind, "conclusion": r.conclusion, "evidence": json.loads(r.evidence),
                     "experiment": r.experiment, "study": r.study, "created_at": r.created_at} for r in conn.execute(query)]

    def set_baseline(self, experiment: str, study: str) -> None:
        with self._write() as conn:
            result = conn.execute(experiments.update().where(experiments.c.name == experiment).values(baseline=study))
            if result.rowcount != 1:
                raise StudyNotFound(f"no experiment named {experiment!r}")

    def get_baselines(self) -> dict[str, str | None]:
        with self._read() as conn:
            return {r.name: r.baseline for r in conn.execute(sa.select(experiments.c.name, experiments.c.baseline))}

    # checkpoints -----------------------------------------------------------
    @staticmethod
    def _write_manifest(conn: sa.Connection, trial_id: int, kept: Sequence[CheckpointRecord]) -> None:
        conn.execute(checkpoints.delete().where(checkpoints.c.trial_id == trial_id))
        if kept:
            conn.execute(checkpoints.insert(), [
                {"trial_id": trial_id, "step": c.step, "path": c.path, "value": _nan_to_none(c.value)} for c in kept
            ])

    def set_checkpoints(self, trial_id: int, worker_id: str, kept: Sequence[CheckpointRecord]) -> None:
        with self._write() as conn:
            self._touch(conn, trial_id, worker_id)
            self._write_manifest(conn, trial_id, kept)

    def params_used(self, study_id: int) -> dict[int, dict[str, Any]]:
        query = (sa.select(trials.c.number, trials.c.params_used)
                 .where(trials.c.study_id == study_id, trials.c.params_used.is_not(None)))
        with self._read() as conn:
            return {number: json.loads(text) for number, text in conn.execute(query)}

    def replace_checkpoints(self, trial_id: int, kept: Sequence[CheckpointRecord]) -> bool:
        with self._write() as conn:
            state = conn.execute(sa.select(trials.c.state).where(trials.c.id == trial_id)).scalar()
            if state is None or state == "running":
                return False
            self._write_manifest(conn, trial_id, kept)
        return True

    def study_checkpoints(self, study_id: int) -> dict[int, list[CheckpointRecord]]:
        query = (sa.select(checkpoints).join(trials, trials.c.id == checkpoints.c.trial_id)
                 .where(trials.c.study_id == study_id).order_by(checkpoints.c.trial_id, checkpoints.c.step))
        out: dict[int, list[CheckpointRecord]] = {}
        with self._read() as conn:
            for r in conn.execute(query):
                out.setdefault(r.trial_id, []).append(CheckpointRecord(r.trial_id, r.step, r.path, r.value))
        return out

    def get_checkpoints(self, trial_id: int) -> list[CheckpointRecord]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(checkpoints).where(checkpoints.c.trial_id == trial_id).order_by(checkpoints.c.step)
            ).all()
        return [CheckpointRecord(r.trial_id, r.step, r.path, r.value) for r in rows]
