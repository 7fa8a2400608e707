"""Full report for a 10,000-trial study, against Optuna's plot_slice + plot_intermediate_values.

A synthetic study (10,000 trials x 200 evaluations x 2 metrics = 4 million
curve points) is written to SQLite. Then, each in a fresh process so that peak
memory (max RSS) is measured separately:

- tunebook: ``tb.analyze(study)`` (every check and figure) and ``report.save``;
- Optuna: the same trials (params, values, the objective's 200 intermediate
  values each) loaded into an in-memory Optuna study, then ``plot_slice`` and
  ``plot_intermediate_values`` built and written to HTML.

Run: python benchmarks/bench_analysis.py [--trials 10000] [--evals 200]
Targets: tunebook under 15 s and 2 GB here.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
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


def part_tunebook(db: Path, out: Path) -> dict:
    import tunebook as tb

    start = time.perf_counter()
    report = tb.analyze(tb.load_study("bench", storage=f"sqlite:///{db}"))
    report.save(out / "tunebook.html")
    return {"seconds": time.perf_counter() - start, "findings": len(report.findings), "figures": len(report.figures)}


def part_optuna(db: Path, out: Path) -> dict:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    import tunebook as tb

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = tb.load_study("bench", storage=f"sqlite:///{db}")
    dists = {"weight_decay": CategoricalDistribution([0.0, 1.0e-4, 1.0e-3, 1.0e-2]),
             "learning_rate": FloatDistribution(1e-4, 1.0, log=True), "beta1": FloatDistribution(0.8, 0.99)}
    load_start = time.perf_counter()
    frozen = []
    for t in study.trials():
        params = {k: t.params[k] for k in dists}
        if t.state == "completed":
            curve_points = dict(study.metrics(t, ["val/error"]).get("val/error", []))
            frozen.append(optuna.trial.create_trial(params=params, distributions=dists, value=t.value,
                                                    intermediate_values=curve_points))
        else:
            frozen.append(optuna.trial.create_trial(params=params, distributions=dists, state=optuna.trial.TrialState.FAIL))
    ostudy = optuna.create_study(direction="minimize")
    ostudy.add_trials(frozen)
    load_seconds = time.perf_counter() - load_start
    start = time.perf_counter()
    optuna.visualization.plot_slice(ostudy).write_html(str(out / "optuna_slice.html"), include_plotlyjs=True)
    optuna.visualization.plot_intermediate_values(ostudy).write_html(str(out / "optuna_intermediate.html"), include_plotlyjs=True)
    return {"seconds": time.perf_counter() - start, "load_seconds": load_seconds}


def child(part: str, db: Path, out: Path) -> None:
    result = {"tunebook": part_tunebook, "optuna": part_optuna}[part](db, out)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--evals", type=int, default=200)
    parser.add_argument("--child", choices=("tunebook", "optuna"))
    parser.add_argument("--db")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.db), Path(args.out))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db, out = Path(tmp) / "bench.db", Path(tmp)
        built = build(db, args.trials, args.evals)
        print(f"synthetic study: {args.trials} trials x {args.evals} evals x 2 metrics written in {built:.1f}s "
              f"({db.stat().st_size / 2**20:.0f} MiB)")
        results = {}
        for part in ("tunebook", "optuna"):
            proc = subprocess.run([sys.executable, __file__, "--child", part, "--db", str(db), "--out", str(out)],
                                  capture_output=True, text=True, check=True)
            results[part] = json.loads(proc.stdout.strip().splitlines()[-1])
    ours, theirs = results["tunebook"], results["optuna"]
    print(f"tunebook full report ({ours['findings']} findings, {ours['figures']} figures): "
          f"{ours['seconds']:.2f}s, peak RSS {ours['max_rss_mb']:.0f} MiB (target < 15 s, < 2 GB)")
    print(f"optuna plot_slice + plot_intermediate_values: {theirs['seconds']:.2f}s "
          f"(after {theirs['load_seconds']:.1f}s loading the trials), peak RSS {theirs['max_rss_mb']:.0f} MiB")
    print(f"ratio optuna/tunebook time: {theirs['seconds'] / ours['seconds']:.2f}x; "
          f"memory: {theirs['max_rss_mb'] / ours['max_rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
