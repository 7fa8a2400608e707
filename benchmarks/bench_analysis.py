"""Figures for a synthetic study, tunebook against Optuna, from the same stored data, and the floor.

A synthetic study (10,000 trials x 200 evaluations x 2 metrics = 4 million
curve points by default) is written to tunebook's SQLite store, and the same
trials (params, state, value, the objective's curve as intermediate values) to
an Optuna ``RDBStorage`` on SQLite (WAL, ``synchronous=NORMAL``, as tunebook's).
Both writes are untimed. Then, each part in a fresh process so that peak memory
(max RSS) is measured separately, each tool reads its own store and draws the
same kinds of figures, all timed from opening the store to the HTML written:

- tunebook, same figures: ``tb.load_study``, an axis plot per hyperparameter
  and the objective's curves (the 5 best trials; the best trial of each
  scientific value), rendered with Plotly and written to one HTML file;
- Optuna, same figures: ``optuna.load_study`` from its RDB, ``plot_slice`` per
  hyperparameter and ``plot_intermediate_values`` of the same two selections of
  trials (each selection put in an in-memory study, as an Optuna user would),
  written the same way. Optuna loads every trial's intermediate values as it
  opens the study; that is its cost of reading its store, and it is timed;
- tunebook, full report (reference; it has no Optuna counterpart: every
  check, the isolation plots and the bootstrapped best-of-k trials included):
  ``tb.analyze(study)`` and ``report.save``;
- floor: raw ``sqlite3`` reading the same rows from tunebook's store into
  NumPy (every trial's params, state and value; the chosen trials' curves),
  without any figure.

Run: python benchmarks/bench_analysis.py [--trials 10000] [--evals 200]
Targets: tunebook's full report under 15 s and 2 GB here; its same-figures part
faster than Optuna's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE = {
    "scientific": {"weight_decay": {"choice": [0.0, 1.0e-4, 1.0e-3, 1.0e-2]}},
    "nuisance": {"learning_rate": {"min": 1.0e-4, "max": 1.0, "scale": "log"}, "beta1": {"min": 0.8, "max": 0.99}},
    "fixed": {"optimizer": "adam"},
}


def curve(params, steps, rng):

    from tunebook.analysis.synthetic import exp_decay

    lr = params["learning_rate"]
    if lr > 0.3:
        return "train/loss was nan"
    floor = 0.05 + 0.05 * (math.log10(lr) + 2) ** 2 + 0.2 * (params["beta1"] - 0.9) ** 2
    val = exp_decay(steps, floor, 1.0, steps[-1] * 0.1) + 0.002 * rng.standard_normal(len(steps))
    return {"val/error": val, "train/loss": 2 * val + 0.01 * rng.standard_normal(len(steps))}


def build(db: Path, trials: int, evals: int) -> float:
    from tunebook.analysis.synthetic import write_study

    start = time.perf_counter()
    write_study(f"sqlite:///{db}", "bench", curve, space=SPACE, trials=trials, max_train_steps=evals * 10, evals=evals)
    return time.perf_counter() - start


class _WalConnection(sqlite3.Connection):
    """An sqlite3 connection with tunebook's journal settings (WAL, synchronous=NORMAL)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA journal_mode=WAL")
        self.execute("PRAGMA synchronous=NORMAL")


def _optuna_storage(db: Path):
    import optuna

    return optuna.storages.RDBStorage(f"sqlite:///{db}", engine_kwargs={"connect_args": {"factory": _WalConnection}})


def build_optuna(db: Path, optuna_db: Path) -> float:
    """Copy the synthetic study into an Optuna RDB on SQLite (untimed in the comparison; its duration is printed).

    Optuna's own ``add_trials`` takes tens of milliseconds a trial here, so the rows are written straight into
    the schema Optuna created (its tables, its enum names, its distribution JSON), then checked by loading the
    study back through Optuna.
    """
    import datetime

    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, distribution_to_json

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    dists = {k: CategoricalDistribution(v) if isinstance(v, list) else FloatDistribution(v[0], v[1], log=v[2])
             for k, v in DISTS.items()}
    as_json = {k: distribution_to_json(d) for k, d in dists.items()}
    optuna.create_study(storage=_optuna_storage(optuna_db), study_name="bench", direction="minimize")
    src = sqlite3.connect(db)
    (study_id,) = src.execute("SELECT id FROM tb_studies WHERE name = 'bench'").fetchone()
    rows = src.execute("SELECT id, number, state, value, params FROM tb_trials WHERE study_id = ? ORDER BY number",
                       (study_id,)).fetchall()
    dst = sqlite3.connect(optuna_db, isolation_level=None)
    (ostudy_id,) = dst.execute("SELECT study_id FROM studies WHERE study_name = 'bench'").fetchone()
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat(" ")
    dst.execute("BEGIN")
    completed = 0
    for trial_id, number, state, value, params_json in rows:
        ok = state == "completed" and value is not None
        completed += ok
        oid = dst.execute("INSERT INTO trials (number, study_id, state, datetime_start, datetime_complete) "
                          "VALUES (?, ?, ?, ?, ?)", (number, ostudy_id, "COMPLETE" if ok else "FAIL", now, now)).lastrowid
        params = json.loads(params_json)
        dst.executemany("INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
                        "VALUES (?, ?, ?, ?)",
                        [(oid, k, dists[k].to_internal_repr(params[k]), as_json[k]) for k in DISTS])
        if ok:
            dst.execute("INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?, 0, ?, 'FINITE')",
                        (oid, value))
            points = src.execute("SELECT step, value FROM tb_metrics WHERE trial_id = ? AND name = 'val/error'",
                                 (trial_id,)).fetchall()
            dst.executemany("INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, "
                            "intermediate_value_type) VALUES (?, ?, ?, ?)",
                            [(oid, step, v, "FINITE" if v is not None else "NAN") for step, v in points])
    dst.execute("COMMIT")
    dst.close()
    src.close()
    elapsed = time.perf_counter() - start
    check = optuna.load_study(study_name="bench", storage=_optuna_storage(optuna_db))
    done = check.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    assert len(check.trials) == len(rows) and len(done) == completed, (len(check.trials), len(done))
    assert min(t.value for t in done) == min(r[3] for r in rows if r[2] == "completed" and r[3] is not None)
    assert all(len(t.intermediate_values) > 0 for t in done)
    return elapsed


#: The hyperparameters as Optuna distributions: a list is categorical, else (low, high, log).
DISTS = {"weight_decay": [0.0, 1.0e-4, 1.0e-3, 1.0e-2], "learning_rate": (1e-4, 1.0, True), "beta1": (0.8, 0.99, False)}


def _html(figures: list) -> str:
    return "".join(f.to_html(include_plotlyjs=False, full_html=False) for f in figures)


def part_tunebook(db: Path, optuna_db: Path, out: Path) -> dict:
    import plotly.graph_objects  # noqa: F401 - imports are left out of every part's time

    from tunebook import analyze, load_study

    start = time.perf_counter()
    report = analyze(load_study("bench", storage=f"sqlite:///{db}"))
    report.save(out / "tunebook.html")
    return {"seconds": time.perf_counter() - start, "findings": len(report.findings), "figures": len(report.figures)}


def part_tunebook_figures(db: Path, optuna_db: Path, out: Path) -> dict:
    import plotly.graph_objects  # noqa: F401

    import tunebook as tb
    from tunebook import Thresholds
    from tunebook.analysis.data import load
    from tunebook.analysis.figures import Figure, axis_plot, curve_sets, render

    start = time.perf_counter()
    data = load(tb.load_study("bench", storage=f"sqlite:///{db}"))
    loaded = time.perf_counter() - start
    figures = [Figure("axis", f"{data.metric} against {name}", axis_plot(data, name)) for name in data.space]
    figures += [Figure("curves", cs.title, cs) for cs in curve_sets(data, Thresholds()) if cs.metric == data.metric]
    (out / "tunebook_figures.html").write_text(_html([render(f) for f in figures]))
    return {"seconds": time.perf_counter() - start, "figures": len(figures), "load_seconds": loaded}


def part_optuna(db: Path, optuna_db: Path, out: Path) -> dict:
    import optuna
    import optuna.visualization
    import plotly.graph_objects  # noqa: F401

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    study = optuna.load_study(study_name="bench", storage=_optuna_storage(optuna_db))
    study.get_trials(deepcopy=False)  # what the first figure would do: every trial, intermediate values included
    loaded = time.perf_counter() - start
    figures = [optuna.visualization.plot_slice(study, params=[name]) for name in DISTS]
    ranked = sorted(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)),
                    key=lambda t: (t.value, t.number))
    best_of_value: dict = {}
    for t in ranked:
        best_of_value.setdefault(t.params["weight_decay"], t)
    for chosen in (ranked[:5], list(best_of_value.values())):
        selection = optuna.create_study(direction="minimize")
        selection.add_trials(chosen)
        figures.append(optuna.visualization.plot_intermediate_values(selection))
    (out / "optuna_figures.html").write_text(_html(figures))
    return {"seconds": time.perf_counter() - start, "figures": len(figures), "load_seconds": loaded}


def part_floor(db: Path, optuna_db: Path, out: Path) -> dict:
    """Raw sqlite3 into NumPy: every trial's params, state and value, then the chosen trials' objective curves."""
    import numpy as np

    start = time.perf_counter()
    conn = sqlite3.connect(db)
    (study_id,) = conn.execute("SELECT id FROM tb_studies WHERE name = 'bench'").fetchone()
    rows = conn.execute("SELECT id, number, state, value, params FROM tb_trials WHERE study_id = ? ORDER BY number",
                        (study_id,)).fetchall()
    params = [json.loads(r[4]) for r in rows]
    columns = {name: np.array([p[name] for p in params]) for name in DISTS}
    value = np.array([r[3] if r[2] == "completed" and r[3] is not None else np.inf for r in rows])
    ranked = np.argsort(value, kind="stable")
    ranked = ranked[np.isfinite(value[ranked])]
    chosen = list(ranked[:5])
    for wd in np.unique(columns["weight_decay"]):
        of_value = ranked[columns["weight_decay"][ranked] == wd]
        if len(of_value):
            chosen.append(of_value[0])
    curves = {}
    for i in chosen:
        points = np.array(conn.execute("SELECT step, value FROM tb_metrics WHERE trial_id = ? AND name = ? "
                                       "ORDER BY step", (rows[i][0], "val/error")).fetchall(), dtype=float)
        curves[int(rows[i][1])] = (points[:, 0], points[:, 1])
    conn.close()
    return {"seconds": time.perf_counter() - start, "trials": len(rows), "curves": len(curves)}


PARTS = {"tunebook": part_tunebook, "tunebook-figures": part_tunebook_figures, "optuna": part_optuna,
         "floor": part_floor}


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, which exec resets (``ru_maxrss`` keeps the parent's peak)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(part: str, db: Path, optuna_db: Path, out: Path) -> None:
    result = PARTS[part](db, optuna_db, out)
    result["max_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--evals", type=int, default=200)
    parser.add_argument("--child", choices=tuple(PARTS))
    parser.add_argument("--db")
    parser.add_argument("--optuna-db")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.db), Path(args.optuna_db), Path(args.out))
        return
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        db, optuna_db, out = Path(tmp) / "bench.db", Path(tmp) / "optuna.db", Path(tmp)
        built = build(db, args.trials, args.evals)
        print(f"synthetic study: {args.trials} trials x {args.evals} evals x 2 metrics written in {built:.1f}s "
              f"({db.stat().st_size / 2**20:.0f} MiB)", flush=True)
        copied = build_optuna(db, optuna_db)
        print(f"the same trials copied into an Optuna RDB on SQLite in {copied:.1f}s "
              f"(untimed below)", flush=True)
        results = {}
        for part in PARTS:
            proc = subprocess.run([sys.executable, __file__, "--child", part, "--db", str(db), "--optuna-db",
                                   str(optuna_db), "--out", str(out)], capture_output=True, text=True, check=True)
            results[part] = json.loads(proc.stdout.strip().splitlines()[-1])
    full, ours, theirs, floor = results["tunebook"], results["tunebook-figures"], results["optuna"], results["floor"]
    print(f"floor: raw sqlite3 into NumPy ({floor['trials']} trials, {floor['curves']} curves): "
          f"{floor['seconds']:.3f}s, peak RSS {floor['max_rss_mb']:.0f} MiB")
    print(f"tunebook same figures ({ours['figures']}: axis plot per param, best curves): {ours['seconds']:.2f}s "
          f"store to HTML (loading the trials {ours['load_seconds']:.2f}s of it; curves load as drawn), peak RSS {ours['max_rss_mb']:.0f} MiB; {ours['seconds'] / floor['seconds']:.1f}x the floor")
    print(f"optuna same figures ({theirs['figures']}: plot_slice per param, plot_intermediate_values): "
          f"{theirs['seconds']:.2f}s store to HTML (loading the trials {theirs['load_seconds']:.2f}s of it), peak RSS {theirs['max_rss_mb']:.0f} MiB; "
          f"{theirs['seconds'] / floor['seconds']:.1f}x the floor")
    print(f"ratio optuna/tunebook, same figures from each one's store: time {theirs['seconds'] / ours['seconds']:.2f}x, "
          f"memory {theirs['max_rss_mb'] / ours['max_rss_mb']:.2f}x")
    print(f"tunebook full report ({full['findings']} findings, {full['figures']} figures): {full['seconds']:.2f}s, "
          f"peak RSS {full['max_rss_mb']:.0f} MiB (target < 15 s, < 2 GB); {full['seconds'] / floor['seconds']:.1f}x "
          f"the floor; ratio to optuna's same figures: {theirs['seconds'] / full['seconds']:.2f}x")

if __name__ == "__main__":
    main()
