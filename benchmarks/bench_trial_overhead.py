"""Per-trial overhead of the worker loop: N no-op trials, one metric each.

For each backend (SQLite in WAL mode with synchronous=NORMAL; PostgreSQL on a
throwaway local server):

- ``tb.run(study, noop, workers=W)`` for W in ``--workers`` (0: in this
  process; 2: two spawned worker processes). Two figures per run:
  ``wall`` (the call to its return, divided by N: includes starting the
  worker processes) and ``steady`` (from the first trial's start to the last
  trial's finish, as stored, divided by N: the per-trial cost once running),
  and how long after the call the first trial was claimed (worker start-up);
- the floor: the raw driver (``sqlite3``/``psycopg``) in one process doing
  what a trial must do in two transactions on the same schema, indexes and
  pragmas: claim (one ``UPDATE ... RETURNING``), then one metric row and the
  finish.

Prints ms per trial and the ratio to the floor measured in the same run, so
that runs on a loaded machine compare by ratio. Compare two versions of
tunebook by running the script with each on ``PYTHONPATH`` in turn.

Run: python benchmarks/bench_trial_overhead.py [--trials 500] [--workers 0,2] [--backends sqlite,postgresql]
Target (issue 17): at most 0.5 ms per trial with 2 workers on SQLite.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

OBJECTIVE = "val/error"


def noop(trial) -> None:
    trial.log(1, **{OBJECTIVE: trial.params["lr"]})


def make_study(url: str, name: str, trials: int):
    import tunebook as tb

    return tb.create_study(name, space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")}),
                           objective=(OBJECTIVE, "min"), trials=trials, max_train_steps=1, storage=url)


def bench_tunebook(url: str, trials: int, workers: int, folder: Path) -> dict[str, float]:
    import tunebook as tb

    start = time.perf_counter()
    study = make_study(url, f"noop-w{workers}", trials)
    created = time.perf_counter() - start
    start, epoch = time.perf_counter(), time.time()
    result = tb.run(study, noop, workers=workers, progress=False, checkpoint_dir=str(folder / "ckpt"))
    wall = time.perf_counter() - start
    assert result.counts.get("completed") == trials, result.counts
    done = study.storage.get_trials(study.id)
    first = min(t.started_at for t in done)
    steady = max(t.finished_at for t in done) - first
    return {"create": created / trials, "wall": wall / trials, "steady": steady / trials, "startup": first - epoch}


CLAIM = (
    "UPDATE tb_trials SET state = 'running', worker_id = {p}, heartbeat_at = {p}, attempts = attempts + 1,"
    " started_at = COALESCE(started_at, {p})"
    " WHERE id = (SELECT id FROM tb_trials WHERE study_id = {p} AND state = 'pending'"
    " ORDER BY number LIMIT 1{lock}) RETURNING id, number, params, seed, attempts"
)
METRIC = "INSERT INTO tb_metrics (trial_id, step, name, value) VALUES ({p}, {p}, {p}, {p})"
FINISH = (
    "UPDATE tb_trials SET state = 'completed', value = {p}, best_step = {p}, finished_at = {p}, heartbeat_at = {p}"
    " WHERE id = {p} AND worker_id = {p} AND state = 'running'"
)


def floor_sqlite(url: str, trials: int) -> float:
    """The raw sqlite3 loop: claim, then metric + finish; two BEGIN IMMEDIATE transactions a trial."""
    import json

    study = make_study(url, "floor", trials)
    path = url[len("sqlite:///"):]
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=60000"):
        conn.execute(f"PRAGMA {pragma}")
    claim, metric, finish = (s.format(p="?", lock="") for s in (CLAIM, METRIC, FINISH))
    start = time.perf_counter()
    for _ in range(trials):
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(claim, ("floor", now, now, study.id)).fetchone()
        conn.execute("COMMIT")
        trial_id, params = row[0], json.loads(row[2])
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(metric, (trial_id, 1, OBJECTIVE, params["lr"]))
        now = time.time()
        conn.execute(finish, (params["lr"], 1, now, now, trial_id, "floor"))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / trials


def floor_postgresql(url: str, trials: int) -> float:
    """The raw psycopg loop: claim (SKIP LOCKED), then metric + finish; two transactions a trial."""
    import json

    import psycopg

    study = make_study(url, "floor", trials)
    claim, metric, finish = (s.format(p="%s", lock=" FOR UPDATE SKIP LOCKED") for s in (CLAIM, METRIC, FINISH))
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        start = time.perf_counter()
        for _ in range(trials):
            now = time.time()
            with conn.transaction():
                row = conn.execute(claim, ("floor", now, now, study.id), prepare=True).fetchone()
            trial_id, params = row[0], json.loads(row[2])
            with conn.transaction():
                conn.execute(metric, (trial_id, 1, OBJECTIVE, params["lr"]), prepare=True)
                now = time.time()
                conn.execute(finish, (params["lr"], 1, now, now, trial_id, "floor"), prepare=True)
        elapsed = time.perf_counter() - start
    return elapsed / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--workers", default="0,2", help="comma-separated worker counts")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--label", default="", help="printed on every line (e.g. before/after)")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    label = f"[{args.label}] " if args.label else ""
    import tunebook

    print(f"{label}tunebook from {Path(tunebook.__file__).parent}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for backend in args.backends.split(","):
            server = None
            if backend == "sqlite":
                def new_url(name: str) -> str:
                    return f"sqlite:///{folder / name}.db"
                floor_fn = floor_sqlite
            else:
                from tunebook.testing import PostgresServer, pg_bindir

                bindir = pg_bindir()
                if bindir is None:
                    print(f"{label}{backend}: no PostgreSQL binaries; skipped")
                    continue
                server = PostgresServer(bindir)

                def new_url(name: str, server=server) -> str:
                    return server.new_database()
                floor_fn = floor_postgresql
            try:
                floor = floor_fn(new_url("floor"), args.trials)
                print(f"{label}{backend} floor (raw driver, 2 transactions/trial): {floor * 1e3:.3f} ms/trial",
                      flush=True)
                for w in workers:
                    r = bench_tunebook(new_url(f"w{w}"), args.trials, w, folder / f"{backend}-w{w}")
                    print(f"{label}{backend} workers={w}: wall {r['wall'] * 1e3:.3f} ms/trial "
                          f"({r['wall'] / floor:.1f}x floor), steady {r['steady'] * 1e3:.3f} ms/trial "
                          f"({r['steady'] / floor:.1f}x floor); first claim {r['startup'] * 1e3:.0f} ms after the call; "
                          f"create_study {r['create'] * 1e3:.3f} ms/trial",
                          flush=True)
            finally:
                if server is not None:
                    server.stop()


if __name__ == "__main__":
    main()
