"""The metric flush per row: tunebook's StoreWriter against the raw driver.

One running trial; each flush writes ``--steps`` steps of ``--metrics`` metrics
(one transaction per flush, as a trial's writer thread does every second).

- tunebook: ``StoreWriter.write_scalars(step, {name: float})`` for each step,
  then ``flush()`` (the ownership check and the rows in one transaction:
  SQLite ``executemany``, PostgreSQL ``COPY``);
- tunebook, full path: the same values through ``AsyncWriter`` (conversion,
  NaN/Inf checks, merge by step) in front of the StoreWriter, as a trial has it;
- the floor: the raw driver inserting the same rows, already as tuples, into
  the same table with the same pragmas in one transaction (SQLite:
  ``sqlite3`` ``executemany``; PostgreSQL: ``psycopg`` binary ``COPY``, and
  ``executemany`` for reference).

Prints microseconds per row, wall and CPU of the calling thread (the
training process pays the CPU; PostgreSQL's own work is in the server), and
the ratio to the floor measured in the same run.

Run: python benchmarks/bench_flush.py [--steps 1000] [--metrics 3] [--flushes 20] [--backends sqlite,postgresql]
Target (issue 17): at most 1.5x the raw driver per row on SQLite.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Callable

NAMES = ("train/loss", "val/error", "lr", "grad_norm", "val/loss", "train/error", "throughput", "weight_norm")


def make_trial(url: str):
    import tunebook as tb

    study = tb.create_study("flush", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")}),
                            objective=("val/error", "min"), trials=1, max_train_steps=10**9, storage=url)
    record = study.storage.claim_trial("bench", study.id)
    return study, record


def steps_of(flush: int, steps: int, names: tuple[str, ...]) -> list[tuple[int, dict[str, float]]]:
    base = flush * steps
    return [(base + i, {n: 0.5 + 1e-6 * (base + i) + k for k, n in enumerate(names)}) for i in range(steps)]


def timed(batches: list, write: Callable[[object], None]) -> tuple[float, float]:
    """Wall and thread-CPU seconds of write(batch) over all batches."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for batch in batches:
        write(batch)
    return time.perf_counter() - wall, time.thread_time() - cpu


def bench_store_writer(url: str, args, names) -> tuple[float, float]:
    from tunebook.writers import StoreWriter

    study, record = make_trial(url)
    writer = StoreWriter(study.storage, record.id, "bench")
    batches = [steps_of(f, args.steps, names) for f in range(args.flushes)]

    def write(batch) -> None:
        for step, scalars in batch:
            writer.write_scalars(step, scalars)
        writer.flush()

    return timed(batches, write)


def bench_async_writer(url: str, args, names) -> tuple[float, float]:
    from tunebook.writers import AsyncWriter, FanOutWriter, ObjectiveWriter, StoreWriter

    study, record = make_trial(url)
    inner = FanOutWriter([StoreWriter(study.storage, record.id, "bench"), ObjectiveWriter("val/error")])
    writer = AsyncWriter(inner, flush_interval=3600.0, start=False)  # flushed here: the writer thread's work
    batches = [steps_of(f, args.steps, names) for f in range(args.flushes)]

    def write(batch) -> None:
        for step, scalars in batch:
            writer.append(step, scalars)
        writer.flush()

    return timed(batches, write)


def rows_of(trial_id: int, batch) -> list[tuple[int, int, str, float]]:
    return [(trial_id, step, name, value) for step, scalars in batch for name, value in scalars.items()]


def floor_sqlite(url: str, args, names) -> tuple[float, float]:
    study, record = make_trial(url)
    conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None, timeout=60)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=60000"):
        conn.execute(f"PRAGMA {pragma}")
    batches = [rows_of(record.id, steps_of(f, args.steps, names)) for f in range(args.flushes)]

    def write(rows) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO tb_metrics (trial_id, step, name, value) VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")

    try:
        return timed(batches, write)
    finally:
        conn.close()


def floor_postgresql(url: str, args, names, copy: bool) -> tuple[float, float]:
    import psycopg

    study, record = make_trial(url)
    batches = [rows_of(record.id, steps_of(f, args.steps, names)) for f in range(args.flushes)]
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        cur = conn.cursor()

        def write(rows) -> None:
            with conn.transaction():
                if copy:
                    with cur.copy("COPY tb_metrics (trial_id, step, name, value) FROM STDIN (FORMAT BINARY)") as c:
                        c.set_types(["int4", "int4", "varchar", "float8"])
                        for row in rows:
                            c.write_row(row)
                else:
                    cur.executemany("INSERT INTO tb_metrics (trial_id, step, name, value) VALUES (%s, %s, %s, %s)",
                                    rows)

        return timed(batches, write)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per flush")
    parser.add_argument("--metrics", type=int, default=3, help="metrics per step")
    parser.add_argument("--flushes", type=int, default=20)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    names = NAMES[: args.metrics]
    rows = args.steps * args.metrics * args.flushes
    label = f"[{args.label}] " if args.label else ""
    import tunebook

    print(f"{label}tunebook from {Path(tunebook.__file__).parent}; {rows} rows, {args.steps * args.metrics} per flush",
          flush=True)

    def line(name: str, result: tuple[float, float], floor: tuple[float, float] | None) -> None:
        wall, cpu = (x / rows * 1e6 for x in result)
        text = f"{label}{name}: {wall:.2f} us/row wall, {cpu:.2f} us/row CPU"
        if floor is not None:
            text += f" ({result[0] / floor[0]:.2f}x floor wall, {result[1] / floor[1]:.2f}x floor CPU)"
        print(text, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                floor = floor_sqlite(f"sqlite:///{folder / 'floor.db'}", args, names)
                line("sqlite floor (sqlite3 executemany)", floor, None)
                line("sqlite StoreWriter", bench_store_writer(f"sqlite:///{folder / 'store.db'}", args, names), floor)
                line("sqlite AsyncWriter+StoreWriter", bench_async_writer(f"sqlite:///{folder / 'async.db'}", args, names),
                     floor)
                continue
            from tunebook.testing import PostgresServer, pg_bindir

            bindir = pg_bindir()
            if bindir is None:
                print(f"{label}postgresql: no PostgreSQL binaries; skipped")
                continue
            server = PostgresServer(bindir)
            try:
                many = floor_postgresql(server.new_database(), args, names, copy=False)
                line("postgresql psycopg executemany", many, None)
                floor = floor_postgresql(server.new_database(), args, names, copy=True)
                line("postgresql floor (psycopg binary COPY)", floor, None)
                line("postgresql StoreWriter", bench_store_writer(server.new_database(), args, names), floor)
                line("postgresql AsyncWriter+StoreWriter", bench_async_writer(server.new_database(), args, names), floor)
            finally:
                server.stop()


if __name__ == "__main__":
    main()
