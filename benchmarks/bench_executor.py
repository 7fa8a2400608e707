"""Per-trial overhead of running no-op trials with 2 workers, against Optuna (fair and default) and the floor.

- tunebook: ``tb.create_study`` + ``tb.run(study, noop, workers=2)`` on SQLite
  (and on PostgreSQL, a throwaway local server, unless --skip-postgres): the
  study's creation (its trials materialized and stored) and the start of the two
  worker processes are inside the timed region, then per trial: claim, run,
  write the metric, finish. tunebook's SQLite runs in WAL mode with
  ``synchronous=NORMAL``.
- Optuna, fair: ``optuna.create_study`` + ``study.optimize(noop,
  n_trials=N, n_jobs=2)`` with ``RandomSampler(seed=0)`` (no model fit per
  trial: the quasi-random design tunebook runs needs none either) on an
  ``RDBStorage`` over SQLite with the same journal settings as tunebook (WAL,
  ``synchronous=NORMAL``, set on every connection through ``connect_args``'s
  connection factory). Creation is timed too.
- Optuna, default settings: the same with Optuna's defaults (TPE sampler,
  SQLite's rollback journal with ``synchronous=FULL``: an fsync per commit), as
  a user who changes nothing gets it.
- Ray Tune (only with --ray; it takes minutes): ``Tuner(noop,
  tune_config=TuneConfig(num_samples=N, max_concurrent_trials=2))`` on a local
  Ray with 2 CPUs.
- Floor: a raw ``sqlite3`` loop on one connection, same pragmas, doing what a
  trial needs at minimum: the trials inserted up front (timed, like tunebook's
  study creation), then per trial two transactions: claim (``BEGIN IMMEDIATE``;
  take the first pending trial; mark it running; commit) and finish (one metric
  row inserted, the trial marked completed; commit).

The no-op trial reports one value. Wall time from creation to return, divided by
the number of trials; each ratio compares figures measured in the same run. A
small study of each tool is created (and Optuna's run) first, untimed, so that
no module import falls in a timed region.

Run: python benchmarks/bench_executor.py [--trials 1000] [--skip-postgres] [--ray]
Target: per-trial overhead at least 10x under Optuna with fair settings, at most 0.5 ms.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path


class _WalConnection(sqlite3.Connection):
    """An sqlite3 connection with tunebook's journal settings (WAL, synchronous=NORMAL) from its first statement."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA journal_mode=WAL")
        self.execute("PRAGMA synchronous=NORMAL")


def noop(trial) -> None:
    trial.log(1, **{"val/error": trial.params["lr"]})


def bench_tunebook(url: str, trials: int) -> float:
    import tunebook as tb

    _ = (tb.create_study, tb.run)  # import the modules before the clock starts (import tunebook is lazy)
    start = time.perf_counter()
    study = tb.create_study("noop", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")}),
                            objective=("val/error", "min"), trials=trials, max_train_steps=1, storage=url)
    created = time.perf_counter()
    result = tb.run(study, noop, workers=2, progress=False)
    elapsed = time.perf_counter() - start
    assert result.counts["completed"] == trials, result.counts
    print(f"  (tunebook on {url.split(':')[0]}: creation {(created - start) * 1e3:.0f} ms, "
          f"run {(elapsed - created + start) * 1e3:.0f} ms, worker start-up included)", flush=True)
    return elapsed / trials


def bench_optuna(folder: Path, trials: int, fair: bool) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = "fair" if fair else "default"
    url = f"sqlite:///{folder}/optuna-{name}.db"
    start = time.perf_counter()
    if fair:
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"factory": _WalConnection}})
        study = optuna.create_study(storage=storage, study_name="noop", sampler=optuna.samplers.RandomSampler(seed=0))
    else:
        study = optuna.create_study(storage=url, study_name="noop")
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=trials, n_jobs=2)
    elapsed = time.perf_counter() - start
    assert len(study.trials) == trials
    if fair:  # the settings took: the journal is WAL and the connections synchronous=NORMAL (1)
        with storage.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    return elapsed / trials


def warm_up(folder: Path) -> None:
    """Untimed: import what creating and running a study needs, for both tools, so no import is timed below."""
    import optuna

    import tunebook as tb

    tb.create_study("warm-up", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")}),
                    objective=("val/error", "min"), trials=2, max_train_steps=1, storage=f"sqlite:///{folder}/warm.db")
    _ = tb.run
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for sampler in (optuna.samplers.RandomSampler(seed=0), None):
        study = optuna.create_study(storage=f"sqlite:///{folder}/warm-optuna.db", sampler=sampler)
        study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=2)


def bench_floor(folder: Path, trials: int) -> float:
    """Raw sqlite3, one connection: insert the trials, then claim and finish each in its own transaction."""
    db = sqlite3.connect(folder / "floor.db", isolation_level=None, timeout=60.0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE trials (id INTEGER PRIMARY KEY, state TEXT NOT NULL, lr REAL NOT NULL, worker TEXT)")
    db.execute("CREATE INDEX trials_state ON trials (state, id)")
    db.execute("CREATE TABLE metrics (trial_id INTEGER NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL, "
               "value REAL)")
    start = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO trials (state, lr) VALUES ('pending', ?)", [(1e-4 + i / trials,) for i in range(trials)])
    db.execute("COMMIT")
    for _ in range(trials):
        db.execute("BEGIN IMMEDIATE")
        trial_id, lr = db.execute(
            "UPDATE trials SET state = 'running', worker = 'w' WHERE id = "
            "(SELECT id FROM trials WHERE state = 'pending' ORDER BY id LIMIT 1) RETURNING id, lr").fetchone()
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO metrics VALUES (?, 1, 'val/error', ?)", (trial_id, lr))
        db.execute("UPDATE trials SET state = 'completed' WHERE id = ?", (trial_id,))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    assert db.execute("SELECT count(*) FROM trials WHERE state = 'completed'").fetchone()[0] == trials
    db.close()
    return elapsed / trials


def _ray_noop(config):
    return {"val_error": config["lr"]}


def bench_ray_tune(folder: Path, trials: int) -> float:
    import ray
    from ray import tune

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="error", log_to_driver=False)
    try:
        tuner = tune.Tuner(
            _ray_noop,
            param_space={"lr": tune.loguniform(1e-4, 1.0)},
            tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=2, metric="val_error", mode="min"),
            run_config=tune.RunConfig(storage_path=str(folder / "ray"), verbose=0),
        )
        start = time.perf_counter()
        results = tuner.fit()
        elapsed = time.perf_counter() - start
        assert len(results) == trials
    finally:
        ray.shutdown()
    return elapsed / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--skip-postgres", action="store_true", help="leave tunebook on PostgreSQL out")
    parser.add_argument("--ray", action="store_true", help="include Ray Tune (minutes; left out by default)")
    parser.add_argument("--skip-ray", action="store_true", help="(the default) leave Ray Tune out")
    parser.add_argument("--ray-trials", type=int, default=200,
                        help="Ray Tune runs fewer trials (its per-trial cost is what is compared)")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.trials} no-op trials, 2 workers; load average {load:.1f} on {os.cpu_count()} CPUs", flush=True)

    results: dict[str, float] = {}

    def done(name: str, seconds: float, trials: int) -> None:
        results[name] = seconds
        print(f"{name}: {seconds * 1e3:.3f} ms/trial ({trials} trials)", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        warm_up(folder)
        done("floor: raw sqlite3, 2 transactions/trial", bench_floor(folder, args.trials), args.trials)
        done("tunebook (SQLite)", bench_tunebook(f"sqlite:///{folder}/tb.db", args.trials), args.trials)
        done("optuna fair (RandomSampler, SQLite WAL + synchronous=NORMAL)", bench_optuna(folder, args.trials, True),
             args.trials)
        done("optuna default (TPE, SQLite rollback journal)", bench_optuna(folder, args.trials, False), args.trials)
        if not args.skip_postgres:
            from tunebook.testing import PostgresServer, pg_bindir

            bindir = pg_bindir()
            if bindir is not None:
                server = PostgresServer(bindir)
                try:
                    done("tunebook (PostgreSQL)", bench_tunebook(server.new_database(), args.trials), args.trials)
                finally:
                    server.stop()
        if args.ray and not args.skip_ray:
            done("ray tune Tuner (2 concurrent)", bench_ray_tune(folder, args.ray_trials), args.ray_trials)
    ours = results["tunebook (SQLite)"]
    floor = results["floor: raw sqlite3, 2 transactions/trial"]
    fair = results["optuna fair (RandomSampler, SQLite WAL + synchronous=NORMAL)"]
    default = results["optuna default (TPE, SQLite rollback journal)"]
    print(f"fair ratio optuna/tunebook (SQLite): {fair / ours:.2f}x (target >= 10x)")
    print(f"default-settings ratio optuna/tunebook (SQLite): {default / ours:.2f}x")
    print(f"tunebook (SQLite) / floor: {ours / floor:.1f}x ({ours * 1e3:.3f} ms against {floor * 1e3:.3f} ms; "
          f"target tunebook <= 0.5 ms)")
    if "tunebook (PostgreSQL)" in results:
        pg = results["tunebook (PostgreSQL)"]
        print(f"fair ratio optuna (SQLite)/tunebook (PostgreSQL): {fair / pg:.2f}x")
    if "ray tune Tuner (2 concurrent)" in results:
        print(f"ratio ray tune/tunebook (SQLite): {results['ray tune Tuner (2 concurrent)'] / ours:.2f}x")


if __name__ == "__main__":
    main()
