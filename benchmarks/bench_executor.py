"""Per-trial overhead of running 1,000 no-op trials with 2 workers.

- tunebook: ``tb.run(study, noop, workers=2)`` on SQLite and on PostgreSQL (a
  throwaway local server): claim, run, write the metric, finish, per trial;
- Optuna: ``study.optimize(noop, n_trials=1000, n_jobs=2)`` with an RDB
  storage on SQLite;
- Ray Tune: ``Tuner(noop, tune_config=TuneConfig(num_samples=1000,
  max_concurrent_trials=2))`` on a local Ray with 2 CPUs.

The no-op trial reports one value. Wall time from the call to its return,
divided by the number of trials. tunebook's figure includes starting its two
worker processes.

Run: python benchmarks/bench_executor.py [--trials 1000] [--skip-ray]
Target: lower overhead than both peers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def noop(trial) -> None:
    trial.log(1, **{"val/error": trial.params["lr"]})


def bench_tunebook(url: str, trials: int) -> float:
    import tunebook as tb

    study = tb.create_study("noop", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")}),
                            objective=("val/error", "min"), trials=trials, max_train_steps=1, storage=url)
    start = time.perf_counter()
    result = tb.run(study, noop, workers=2, progress=False)
    elapsed = time.perf_counter() - start
    assert result.counts["completed"] == trials, result.counts
    return elapsed / trials


def bench_optuna(folder: Path, trials: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{folder}/optuna.db", study_name="noop")
    start = time.perf_counter()
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=trials, n_jobs=2)
    elapsed = time.perf_counter() - start
    assert len(study.trials) == trials
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
    parser.add_argument("--ray-trials", type=int, default=200,
                        help="Ray Tune runs fewer trials (its per-trial cost is what is compared)")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    from tunebook.testing import PostgresServer, pg_bindir

    results: dict[str, float] = {}

    def done(name: str, seconds: float, trials: int) -> None:
        results[name] = seconds
        print(f"{name}: {seconds * 1e3:.2f} ms/trial ({trials} trials)", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        done("tunebook (SQLite)", bench_tunebook(f"sqlite:///{folder}/tb.db", args.trials), args.trials)
        bindir = pg_bindir()
        if bindir is not None:
            server = PostgresServer(bindir)
            try:
                done("tunebook (PostgreSQL)", bench_tunebook(server.new_database(), args.trials), args.trials)
            finally:
                server.stop()
        done("optuna optimize(n_jobs=2), SQLite RDB", bench_optuna(folder, args.trials), args.trials)
        if not args.skip_ray:
            done("ray tune Tuner (2 concurrent)", bench_ray_tune(folder, args.ray_trials), args.ray_trials)
    ours = results["tunebook (SQLite)"]
    for name, seconds in results.items():
        if not name.startswith("tunebook"):
            print(f"ratio {name} / tunebook (SQLite): {seconds / ours:.2f}x")
    if "tunebook (PostgreSQL)" in results:
        pg = results["tunebook (PostgreSQL)"]
        for name, seconds in results.items():
            if not name.startswith("tunebook"):
                print(f"ratio {name} / tunebook (PostgreSQL): {seconds / pg:.2f}x")


if __name__ == "__main__":
    main()
